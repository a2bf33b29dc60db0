"""Announce at least once (issue 12 item 5): a fill committed but not yet announced when the listener is
killed is announced after the restart, on `fills_channel` and on the bot's durable feed `fills:{bot_id}`.

The kill lands between commit and publish for real: Redis is stopped, so the first batches commit and their
announcement waits (the writer then stops taking more); then the listener gets SIGKILL, Redis comes back and a
new listener starts: it announces what was committed from the outbox, and the rest (read back by its
catch-up) as usual."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import api_key
from tests.integration.listener.helpers import FillsSubscriber, count_fills, db_fills, fill_feed_ids, log_events
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
        # Committed (PostgreSQL is up) while their announcement waits for Redis. The writer takes at most a
        # few batches it cannot announce (then it stops reading): wait until the committed count is steady.
        committed, steady_since = -1, asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - steady_since < 2.0:
            n = await asyncio.to_thread(count_fills, clean_state, bot_id)
            if n != committed:
                committed, steady_since = n, asyncio.get_running_loop().time()
            await asyncio.sleep(0.2)
        held = set(r["exec_id"] for r in await asyncio.to_thread(db_fills, clean_state, bot_id)) - before
        assert held, first.log_tail()
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
    assert reannounced and sum(e["fills"] for e in reannounced) >= len(held), second.log_tail()
    assert second.terminate() == 0
