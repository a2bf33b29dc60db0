"""A bot's persistent state in PostgreSQL (`trading.strategy_state`, migration 0070): the `StateStore`
(`strategies/runtime/state.py`) of a live bot. The backtester and tests use the in-memory store there.

Each call is one transaction through PgBouncer as `strategy_user`, acting as the bot
(`set_config('trading.bot_id', ..., true)`, which row-level security checks): `save` upserts every
given key at once, `delete` removes keys, `load` reads them all. Values are JSON; a `Decimal` is
stored as its exact string and an aware `datetime` as an ISO 8601 UTC string (`...Z`), so they come
back as strings for the caller to read as `Decimal` / `datetime`. A call that loses its connection
(a PostgreSQL or PgBouncer restart) is retried until `retry_for_s` has passed: each call is
idempotent, so a retry after a lost commit answer writes the same thing again.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from shared.db.pool import open_pool
from shared.settings import DatabaseSettings
from strategies.runtime.state import JSONValue

if TYPE_CHECKING:
    from shared.alpha_db_client import AlphaDBClient

MAX_KEY_LEN = 200  # as the table's CHECK
T = TypeVar("T")
log = structlog.get_logger()

_LOAD_SQL = "SELECT key, value FROM trading.strategy_state WHERE bot_id = %s"
# Rows are locked in key order, the same order as a delete's index scan: concurrent saves and
# deletes of one bot wait for each other instead of deadlocking.
_SAVE_SQL = """
INSERT INTO trading.strategy_state AS s (bot_id, key, value, updated_at)
SELECT %s, e.key, e.value, now() FROM jsonb_each(%s::jsonb) AS e ORDER BY e.key
ON CONFLICT (bot_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"""
_DELETE_SQL = "DELETE FROM trading.strategy_state WHERE bot_id = %s AND key = ANY(%s::text[])"


def _float(value: float) -> str:
    """A float as JSON that jsonb keeps a float: jsonb stores numbers as numeric and prints them without
    an exponent, so 1e+20 would come back as the int 100000000000000000000; written as
    100000000000000000000.0 it comes back as the float it was."""
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def _key(key: object) -> str:
    """A nested object's key, converted as the json module converts it."""
    if isinstance(key, str):
        return key
    if isinstance(key, (bool, int, float)) or key is None:
        return json.dumps(key)
    raise TypeError(f"a key of type {type(key).__name__} is not JSON")


def _encode(value: Any) -> str:
    """JSON text of a state value (pure): the JSON types, plus Decimal (its exact string) and aware
    datetimes (ISO 8601 UTC strings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite decimal")
        return json.dumps(str(value))
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone (state times are UTC)")
        return json.dumps(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(_key(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LEN:
        raise ValueError(f"state key {repr(key)[:60]}: a string of 1 to {MAX_KEY_LEN} characters")
    return key


def encode_items(items: Mapping[str, Any]) -> str:
    """The JSON object a save stores (pure). One clear error for a bad key or value, naming it;
    nothing is stored then."""
    out: dict[str, str] = {}
    for key, value in items.items():
        _check_key(key)
        try:
            out[key] = _encode(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"state {key!r}: {exc}") from None
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in out.items()) + "}"


class PgStateStore:
    """`StateStore` for one bot over a `strategy_user` pool (not autocommit)."""

    def __init__(self, pool: AsyncConnectionPool, bot_id: str, *, retry_for_s: float = 30.0) -> None:
        self._pool = pool
        self.bot_id = bot_id
        self.retry_for_s = retry_for_s
        self.retries = 0  # calls retried after a lost connection (or a deadlock), since start

    @classmethod
    def for_client(cls, client: AlphaDBClient, *, retry_for_s: float = 30.0) -> PgStateStore:
        """The state of the bot an open `AlphaDBClient` is, on that client's pool."""
        return cls(client.pool, client.bot_id, retry_for_s=retry_for_s)

    @classmethod
    @asynccontextmanager
    async def open(cls, db: DatabaseSettings, bot_id: str, *, retry_for_s: float = 30.0,
                   max_size: int = 2) -> AsyncIterator[PgStateStore]:
        """A store with a pool of its own, closed on exit."""
        pool = await open_pool(db, "strategy", max_size=max_size)
        try:
            yield cls(pool, bot_id, retry_for_s=retry_for_s)
        finally:
            await pool.close()

    async def _as_bot(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.retry_for_s
        delay_s = 0.05
        while True:
            try:
                async with self._pool.connection(timeout=5.0) as conn, conn.transaction():
                    await conn.execute("SELECT set_config('trading.bot_id', %s, true)", (self.bot_id,))
                    return await work(conn)
            except psycopg.OperationalError as exc:  # connection lost, server restarting, deadlock
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # a cancellation the pool turned into an error
                    raise asyncio.CancelledError from exc
                if time.monotonic() + delay_s > deadline:
                    raise
                self.retries += 1
                log.warning("strategy_state_retry", bot_id=self.bot_id, error=type(exc).__name__,
                            retry_in_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 2.0)

    async def load(self) -> dict[str, JSONValue]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> dict[str, JSONValue]:
            cur = await conn.execute(_LOAD_SQL, (self.bot_id,))
            return {key: value for key, value in await cur.fetchall()}
        return await self._as_bot(work)

    async def save(self, items: Mapping[str, JSONValue]) -> None:
        if not items:
            return
        payload = encode_items(items)

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(_SAVE_SQL, (self.bot_id, payload))
        await self._as_bot(work)

    async def delete(self, keys: Iterable[str]) -> None:
        wanted = sorted({_check_key(k) for k in keys})
        if not wanted:
            return

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(_DELETE_SQL, (self.bot_id, wanted))
        await self._as_bot(work)
