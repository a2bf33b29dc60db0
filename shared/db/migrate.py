"""Ordered SQL migrations, applied once each and recorded; then role logins from configuration.

Runs on a direct (session) connection as the database owner: it holds a session advisory lock so
two runners never interleave, which PgBouncer's transaction mode could not guarantee.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from shared.settings import ROLE_PASSWORD_VARS, ROLE_USERS, ConfigError, DatabaseSettings, build_settings, fail_config

MIGRATIONS_DIR = Path(os.environ.get("MIGRATIONS_DIR",
                                     Path(__file__).resolve().parents[2] / "infra" / "postgres" / "migrations"))
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 7_341_001


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql_text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql_text.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ConfigError(f"migration file name {path.name!r} is not NNNN_lowercase_name.sql")
        found.append(Migration(m.group(1), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"two migrations share a version number in {directory}")
    return found


def apply_migrations(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is not yet recorded; returns the names applied. Refuses edited history."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute("CREATE SCHEMA IF NOT EXISTS trading")
            conn.execute("""CREATE TABLE IF NOT EXISTS trading.schema_migrations (
                version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
        applied = {v: c for v, c in conn.execute("SELECT version, checksum FROM trading.schema_migrations")}
        done = []
        for mig in migrations:
            if mig.version in applied:
                if applied[mig.version] != mig.checksum:
                    raise ConfigError(f"migration {mig.name} was edited after it was applied; "
                                      "add a new migration instead")
                continue
            with conn.transaction():
                conn.execute(mig.sql_text.encode())
                conn.execute("INSERT INTO trading.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                             (mig.version, mig.name, mig.checksum))
            done.append(mig.name)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def set_role_logins(conn: psycopg.Connection, db: DatabaseSettings) -> list[str]:
    """Give each application role its login password from configuration (idempotent)."""
    enabled = []
    for role, user in ROLE_USERS.items():
        secret = getattr(db, ROLE_PASSWORD_VARS[role].lower())
        if secret is None or not secret.get_secret_value():
            continue
        with conn.transaction():
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(secret.get_secret_value())))
        enabled.append(user)
    return enabled


def main() -> int:
    try:
        db = build_settings(DatabaseSettings)
        migrations = discover()
        with psycopg.connect(db.dsn("owner", direct=True), autocommit=True) as conn:
            applied = apply_migrations(conn, migrations)
            users = set_role_logins(conn, db)
    except ConfigError as exc:
        fail_config(exc)
    except psycopg.OperationalError as exc:
        print(f"migrate: cannot connect to PostgreSQL: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"migrate: {len(applied)} applied ({', '.join(applied) or 'none'}), "
          f"{len(migrations) - len(applied)} already recorded; logins set for {', '.join(users) or 'no role'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
