"""Alerts through the real service: fill bursts coalesced, silent kinds, failed sends retried, and
the watched conditions (listener down, stale bot, reconciler findings, drawdown)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from services.telegram_c2.service import C2Service
from shared.redis_client import redis_for
from tests.integration.telegram.harness import ADMIN, VIEWER, C2Harness
from tests.integration.telegram.writer import listener_writer
from tests.unit.analytics.fillgen import fill

pytestmark = pytest.mark.integration


def to(chat_id: int, prefix: str):  # type: ignore[no-untyped-def]
    return lambda c: int(c.params.get("chat_id", 0)) == chat_id and c.text.startswith(prefix)


async def until(predicate, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_a_burst_of_fills_is_one_message_and_funding_is_silent(c2: C2Harness) -> None:
    async with listener_writer(c2.stack) as writer:
        await writer.write([fill(i, "Buy", "1", "100", "0.01") for i in range(1, 6)]
                           + [fill(9, "Sell", "5", "100", "0.2", exec_type="Funding")])
    for chat in (ADMIN, VIEWER):
        burst = await c2.api.wait_for("sendMessage", to(chat, "5 new fills:"))
        assert len(burst.text.splitlines()) == 6
        assert burst.params.get("disable_notification") in (None, "false", False)
        funding = await c2.api.wait_for("sendMessage", to(chat, "New fill: momentum_001 Sell 5 BTCUSDT"))
        assert "[Funding]" in funding.text
        assert funding.params.get("disable_notification") in ("true", True)
    assert len(c2.api.calls_to("sendMessage", ADMIN)) == 2


async def test_a_throttled_or_failed_send_is_retried_until_delivered(c2: C2Harness) -> None:
    c2.api.fail_next("sendMessage", 2, error_code=429, description="Too Many Requests: retry after 1", retry_after_s=1)
    c2.api.fail_next("sendMessage", 1, error_code=502, description="Bad Gateway", retry_after_s=None)
    async with listener_writer(c2.stack) as writer:
        await writer.write([fill(1, "Sell", "0.5", "42000", "1.1", bot_id="lxalgo_001")])
    for chat in (ADMIN, VIEWER):
        await c2.api.wait_for("sendMessage", to(chat, "New fill: lxalgo_001 Sell 0.5 BTCUSDT"))
    await until(lambda: c2.service.outbox.pending() == 0)
    attempts = [c for c in c2.api.calls_to("sendMessage") if c.text.startswith("New fill: lxalgo_001")]
    assert len(attempts) == 5  # three refused, then one per chat delivered
    assert c2.service.outbox.sent == 2 and c2.service.outbox.retries == 3


async def test_listener_down_and_back(c2: C2Harness) -> None:
    r = redis_for(c2.stack.redis, 0)
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    await r.hset("listener:connections", mapping={"lxalgo_001": json.dumps({"up": False}),
                                                 "public": json.dumps({"up": True})})
    await r.set("heartbeat:websocket_listener:public", now)
    down = await c2.api.wait_for("sendMessage", to(ADMIN, "ALERT: listener connection lxalgo_001"))
    assert "down for more than 60s" in down.text
    await r.set("heartbeat:websocket_listener:lxalgo_001", now)
    await c2.api.wait_for("sendMessage", to(ADMIN, "Recovered: listener connection lxalgo_001 is back"))
    await r.aclose()
    assert not [c for c in c2.api.calls_to("sendMessage") if "connection public" in c.text]
    assert c2.owner_sql("SELECT firing FROM trading.alert_state WHERE alert_key = 'listener:lxalgo_001'") == [(False,)]


async def test_stale_bot_heartbeat_and_reconciler_findings(c2: C2Harness) -> None:
    await until(lambda: bool(c2.owner_sql(
        "SELECT 1 FROM trading.alert_state WHERE alert_key = 'reconciler:last_run_id'")))
    c2.owner_sql("UPDATE trading.bots SET last_heartbeat = now() - interval '5 minutes' WHERE bot_id = 'momentum_001'")
    stale = await c2.api.wait_for("sendMessage", to(VIEWER, "ALERT: bot momentum_001 heartbeat"))
    assert stale.text == "ALERT: bot momentum_001 heartbeat older than 120s"
    c2.owner_sql("""INSERT INTO trading.sync_runs (run_id, kind, trigger, bot_id, range_start, range_end, status,
                                                   finished_at, missing_found, recovered)
                    VALUES (gen_random_uuid(), 'sync', 'schedule', 'lxalgo_001', now() - interval '1 hour', now(),
                            'ok', now(), 3, 3)""")
    found = await c2.api.wait_for("sendMessage", to(ADMIN, "ALERT: reconciler"))
    assert found.text == "ALERT: reconciler found 3 missing fills for lxalgo_001 (3 recovered, run ok)"
    # Reported once, and the stale bot is not repeated on the next rounds.
    mark = len(c2.api.calls)
    c2.api.send_command(ADMIN, "/help")
    await c2.api.wait_for("sendMessage", to(ADMIN, "Alpha trading C2"), after=mark)
    await asyncio.sleep(1.0)  # a few watcher rounds (0.3 s each)
    assert len([c for c in c2.api.calls_to("sendMessage", ADMIN) if c.text.startswith("ALERT")]) == 2


async def test_drawdown_past_the_bot_limit(c2: C2Harness) -> None:
    c2.owner_sql("UPDATE trading.bots SET max_drawdown_pct = 10 WHERE bot_id = 'momentum_001'")
    c2.owner_sql("""INSERT INTO trading.wallet_snapshots (bot_id, snapshot_time, total_equity)
                    VALUES ('momentum_001', now(), 100)""")
    async with listener_writer(c2.stack) as writer:
        await writer.write([fill(1, "Buy", "1", "100", minutes=0), fill(2, "Sell", "1", "110", minutes=10),
                            fill(3, "Buy", "1", "100", minutes=1500), fill(4, "Sell", "1", "70", minutes=1510)])
    alert = await c2.api.wait_for("sendMessage", to(ADMIN, "ALERT: bot momentum_001 drawdown"))
    # peak +10, now -20: 30 USDT below the peak, on an equity of 100 + 30 at the peak
    assert alert.text == "ALERT: bot momentum_001 drawdown 23.1% (30.00 USDT) past its limit of 10%"


async def test_a_restart_neither_repeats_nor_forgets_a_firing_alert(c2: C2Harness) -> None:
    c2.owner_sql("UPDATE trading.bots SET last_heartbeat = now() - interval '5 minutes' WHERE bot_id = 'lxalgo_001'")
    await c2.api.wait_for("sendMessage", to(ADMIN, "ALERT: bot lxalgo_001 heartbeat"))
    await c2.service.stop()
    restarted = C2Service(c2.service.telegram, c2.stack.db, c2.stack.redis, c2.service.settings)
    await restarted.start()
    try:
        mark = len(c2.api.calls)
        await asyncio.sleep(1.0)  # a few watcher rounds of the new process
        assert not [c for c in c2.api.calls[mark:] if c.text.startswith("ALERT")]
        c2.owner_sql("UPDATE trading.bots SET last_heartbeat = now() WHERE bot_id = 'lxalgo_001'")
        await c2.api.wait_for("sendMessage", to(ADMIN, "Recovered: bot lxalgo_001 heartbeat is back"), after=mark)
    finally:
        await restarted.stop()
