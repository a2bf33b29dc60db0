"""Closing an AlphaDBClient returns promptly whatever its heartbeat is doing. A library under the
heartbeat (the connection pool or Redis client) can swallow the task's cancellation; the heartbeat
then went on sleeping and beating, and `close()` waited for it for ever."""
from __future__ import annotations

import asyncio

import pytest

from shared.alpha_db_client import AlphaDBClient
from strategies.runtime.state_pg import PgStateStore
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


async def test_close_returns_while_a_heartbeat_is_in_flight(clean_state: TestStack) -> None:
    for i in range(25):  # a close that lands inside a beat hung about one time in three
        client = AlphaDBClient(bot_id="lxalgo_001", db=clean_state.db, redis=clean_state.redis,
                               heartbeat_interval_s=30)
        await client.__aenter__()
        await PgStateStore.for_client(client).save({"i": i})  # the pool busy alongside the first beat
        await asyncio.wait_for(client.close(), timeout=10)
    async with PgStateStore.open(clean_state.db, "lxalgo_001") as store:
        assert await store.load() == {"i": 24}
