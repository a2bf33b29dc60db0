"""A 60 s Redis outage at 2,000 fills/s (issue 12 item 3): committed batches waiting for Redis are bounded
(the writer stops taking work, the queue fills, the streams stop being read; the REST catch-up recovers what
was not read), so the listener's RSS stays under the container's 256 MB; nothing is lost and every fill is
on the bot's durable feed once Redis is back."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import api_key
from tests.integration.listener.helpers import count_fills, db_fills, fill_feed_ids
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
RATE = 2000
OUTAGE_S = 60.0
RSS_LIMIT_KB = 256 * 1024


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def test_a_60s_redis_outage_at_2000_fills_per_s_stays_under_256mb_and_loses_nothing(
        make_listener: Any, clean_state: TestStack, venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "momentum_001", api_key("momentum_001")
    listener = make_listener([bot_id], LISTENER_FILL_FEED_MAXLEN="400000")
    await listener.wait_healthy(clean_state, [bot_id])
    pid = listener.proc.pid
    before = {e["execId"] for e in await admin.executions(key)}
    count = int(RATE * (OUTAGE_S + 6))
    gen = await admin.generate(key, count=count, rate_per_s=RATE, symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
                               prefix="rds")
    peak = 0
    await asyncio.sleep(2.0)
    clean_state.stop("redis")
    try:
        deadline = asyncio.get_running_loop().time() + OUTAGE_S
        while asyncio.get_running_loop().time() < deadline:
            assert listener.proc.poll() is None, listener.log_tail()
            peak = max(peak, rss_kb(pid))
            await asyncio.sleep(0.5)
    finally:
        clean_state.start("redis")
    status = await admin.wait_generation(gen, timeout_s=120)
    assert status["state"] == "done", status
    truth = {e["execId"] for e in await admin.executions(key)}
    assert len(truth - before) == count
    deadline = asyncio.get_running_loop().time() + 240
    while True:
        peak = max(peak, rss_kb(pid))
        stored = await asyncio.to_thread(count_fills, clean_state, bot_id)
        feed = await fill_feed_ids(clean_state, bot_id) if stored >= len(truth) else {}
        if stored >= len(truth) and set(feed) >= truth:
            break
        assert asyncio.get_running_loop().time() < deadline, (stored, len(truth), len(feed), listener.log_tail())
        await asyncio.sleep(1.0)
    rows = await asyncio.to_thread(db_fills, clean_state, bot_id)
    ids = [r["exec_id"] for r in rows]
    print(f"\nredis outage {OUTAGE_S:.0f}s at {RATE} fills/s: generated {count}, stored {len(ids)}, "
          f"lost {len(truth - set(ids))}, duplicated {len(ids) - len(set(ids))}, on the fill feed {len(feed)}, "
          f"listener peak RSS {peak / 1024:.0f} MB")
    assert (len(truth - set(ids)), len(ids) - len(set(ids))) == (0, 0)
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak / 1024:.0f} MB"
    assert listener.terminate() == 0
