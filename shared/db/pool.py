"""Connection pools through PgBouncer (transaction pooling: no server-side prepared statements)."""
from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from shared.settings import DatabaseSettings, Role


def make_pool(db: DatabaseSettings, role: Role, *, min_size: int = 1, max_size: int = 10,
              direct: bool = False, autocommit: bool = False, check: bool = True) -> AsyncConnectionPool:
    """An unopened pool. With `check`, every checkout first tests the connection (one round trip) and drops
    one that died with a PgBouncer or PostgreSQL restart; a caller that retries its own statements on
    OperationalError can skip that. With `autocommit`, a lone statement is its own transaction (one round
    trip); several statements that must commit together go in `conn.transaction()`."""
    return AsyncConnectionPool(
        db.dsn(role, direct=direct),
        kwargs={"prepare_threshold": None, "autocommit": autocommit},
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection if check else None,
        reconnect_timeout=0,  # keep trying for ever: a restart of the database is not a reason to die
        name=f"alpha_{role}",
    )


async def open_pool(db: DatabaseSettings, role: Role, *, min_size: int = 1, max_size: int = 10,
                    direct: bool = False, wait_s: float = 30.0, autocommit: bool = False,
                    check: bool = True) -> AsyncConnectionPool:
    pool = make_pool(db, role, min_size=min_size, max_size=max_size, direct=direct, autocommit=autocommit,
                     check=check)
    await pool.open(wait=True, timeout=wait_s)
    return pool
