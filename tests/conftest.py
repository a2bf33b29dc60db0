"""Fixtures shared by every test folder. Servers are real; see tests/support/."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support.stack import TestStack, start_test_stack

# Processes under test read their settings from the environment; a developer's .env must not leak in.
os.environ.setdefault("LOG_FORMAT", "console")

# Property tests run beside real servers on shared cores: how fast an example is drawn or run is not what
# they assert (no timed assertions), so a slow moment fails nothing; everything else is Hypothesis' default.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

TRADING_TABLES_SQL = """
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname = 'trading' AND tablename NOT IN ('schema_migrations', 'bots')
"""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile` (make test): the longest files first, a file only to an idle worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.support.file_scheduling import LongestFirstFileScheduling

    return LongestFirstFileScheduling(config, log)


@pytest.fixture(scope="session")
def stack() -> Iterator[TestStack]:
    """The private stack, brought up (and migrated) if it is not running. Left running for reuse."""
    st = start_test_stack()
    yield st
    for part in ("postgres", "pgbouncer", "redis"):
        st.start(part)  # a fault test may have left a part stopped


@pytest.fixture
async def clean_state(stack: TestStack) -> AsyncIterator[TestStack]:
    """Empty trading tables (bots included) and empty Redis, before the test."""
    import psycopg
    import redis.asyncio as aioredis

    async with await psycopg.AsyncConnection.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        tables = [r[0] for r in await (await conn.execute(TRADING_TABLES_SQL)).fetchall()]
        await conn.execute(f"TRUNCATE {', '.join(tables + ['trading.bots'])} RESTART IDENTITY CASCADE")
    r = aioredis.Redis(port=stack.redis.redis_port, password=stack.redis.redis_password.get_secret_value())
    await r.flushall()
    await r.aclose()
    yield stack
