"""The listener's REST catch-up spends the per-account allowance the venue announces in its rate-limit
headers (trade_sync's per-account client, reused) instead of running into 10006 and sleeping a fixed
second (issue 12 item 10)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.redis_client import redis_for
from tests.integration.listener.conftest import KEYS, ListenerProcess, api_key, listener_env
from tests.integration.listener.helpers import count_fills
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def limited_venue() -> Iterator[VenueProcess]:
    # 4 history queries per second per account: the catch-up of 1,500 executions needs 15 pages and more.
    with VenueProcess([(key, secret, "10000000") for _, key, secret in KEYS.values()], speed=1.0,
                      extra_args=["--query-rate-limit", "4"]) as v:
        yield v


async def test_the_catchup_spends_the_announced_allowance_instead_of_running_into_10006(
        clean_state: TestStack, limited_venue: VenueProcess) -> None:
    bot_id, key = "lxalgo_001", api_key("lxalgo_001")
    async with VenueAdmin(limited_venue.admin_url) as admin:
        gen = await admin.generate(key, count=1500, rate_per_s=3000, symbols=["BTCUSDT", "ETHUSDT"], prefix="rl")
        assert (await admin.wait_generation(gen))["state"] == "done"
        truth = len(await admin.executions(key))
    listener = ListenerProcess(listener_env(clean_state, limited_venue, [bot_id])).start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while await asyncio.to_thread(count_fills, clean_state, bot_id) < truth:
            assert asyncio.get_running_loop().time() < deadline, listener.log_tail()
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # the counters reach Redis with the next heartbeat
        r = redis_for(clean_state.redis, 0)
        try:
            counters: dict[str, Any] = await r.hgetall("listener:counters")
        finally:
            await r.aclose()
        assert listener.terminate() == 0
    finally:
        listener.close()
    # The first answer tells the allowance and its window; at most the probe's window is misjudged.
    assert int(counters["catchup_rate_limited"]) <= 1, counters
