"""Announce at least once (issue 12 item 5): a fill committed but not yet announced when the listener is
killed is announced after the restart, on `fills_channel` and on the bot's durable feed `fills:{bot_id}`.

The kill lands between commit and publish for real: Redis is stopped, so the fills commit and their
announcement waits; then the listener gets SIGKILL, Redis comes back and a new listener starts."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import api_key
from tests.integration.listener.helpers import FillsSubscriber, count_fills, fill_feed_ids, log_events
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


async def _until(predicate: Any, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def test_fills_committed_before_a_kill_are_announced_on_both_feeds_after_restart(
        make_listener: Any, clean_state: TestStack, venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "shortseller_001", api_key("shortseller_001")
    first = make_listener([bot_id])
    await first.wait_healthy(clean_state, [bot_id])
    before = {e["execId"] for e in await admin.executions(key)}
    clean_state.stop("redis")
    try:
        gen = await admin.generate(key, count=300, rate_per_s=300, symbols=SYMBOLS, prefix="obx")
        assert (await admin.wait_generation(gen, timeout_s=60))["state"] == "done"
        truth = {e["execId"] for e in await admin.executions(key)}
        # Committed (PostgreSQL is up) while every announcement waits for Redis.
        async def all_committed() -> bool:
            return await asyncio.to_thread(count_fills, clean_state, bot_id) >= len(truth)
        assert await _until(all_committed, 60), first.log_tail()
        first.kill9()
    finally:
        clean_state.start("redis")
    new = truth - before
    assert len(new) == 300
    async with FillsSubscriber(clean_state) as channel:
        second = make_listener([bot_id])
        async def all_announced() -> bool:
            return set(channel.counts(bot_id)) >= truth and set(await fill_feed_ids(clean_state, bot_id)) >= truth
        announced = await _until(all_announced, 60)
        on_channel = channel.counts(bot_id)
    feed = await fill_feed_ids(clean_state, bot_id)
    assert announced, (f"channel missing {len(truth - set(on_channel))}, feed missing {len(truth - set(feed))}\n"
                       + second.log_tail())
    reannounced = log_events(second.log_path.read_text(), "outbox_reannounced")
    assert reannounced and sum(e["fills"] for e in reannounced) >= len(new), second.log_tail()
    assert second.terminate() == 0
