"""The bots' events (Redis Streams events:{bot_id}) relayed by the real C2 service through the local
Bot API server: batched into one message per chat, durable across a stopped Telegram bot, kinds
switchable, malformed entries dead-lettered without stopping the relay."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.telegram_c2.event_relay import DEAD_LETTERS, EVENTS_GROUP
from services.telegram_c2.service import C2Service
from shared.bots import BOTS
from shared.redis_client import redis_for
from tests.integration.telegram.harness import ADMIN, VIEWER, C2Harness
from tests.integration.telegram.test_c2_alerts import to, until

pytestmark = pytest.mark.integration


def now_iso(delta_s: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def event(kind: str, bot_id: str, at: str | None = None, **data: object) -> dict[str, str]:
    return {"kind": kind, "bot_id": bot_id, "at": at or now_iso(), "data": json.dumps(data)}


async def write(r: Redis, *entries: dict[str, str]) -> None:
    async with r.pipeline(transaction=False) as pipe:
        for fields in entries:
            pipe.xadd(f"events:{fields.get('bot_id') or 'shortseller_001'}", fields)
        await pipe.execute()


async def unacknowledged(r: Redis) -> int:
    total = 0
    for bot_id in BOTS:
        if await r.exists(f"events:{bot_id}"):
            total += (await r.xpending(f"events:{bot_id}", EVENTS_GROUP))["pending"]
    return total


def event_messages(c2: C2Harness, chat_id: int) -> list[str]:
    return [c.text for c in c2.api.calls_to("sendMessage", chat_id) if c.text.startswith("Bot event")]


async def test_events_are_batched_into_one_message_per_chat(c2: C2Harness) -> None:
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    at = [(base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z") for i in range(4)]
    hms = [f"{base + timedelta(seconds=i):%H:%M:%S}" for i in range(4)]
    r = redis_for(c2.stack.redis, 0)
    try:
        await write(r,
                    event("entry", "shortseller_001", at[1], symbol="BTCUSDT", side="Sell",
                          qty="0.02", price="60000", ema_fast="59900.5", ema_slow="60100", regime="ACTIVE",
                          stop="61200", target="57000"),
                    event("exit", "lxalgo_001", at[2], symbol="ETHUSDT", qty="0.5",
                          price="3100", pnl="-12.346", pnl_pct="-0.8", holding_s=7500, reason="sl"),
                    event("guard_tripped", "momentum_001", at[3], guard="day_loss",
                          reason="-3.1% today"))
        # an hour old: within C2_EVENT_MAX_AGE_S (a day)
        for chat in (ADMIN, VIEWER):
            await c2.api.wait_for("sendMessage", to(chat, "Bot events (3):"))
        await until(lambda: c2.service.events.delivered == 3)
        assert await unacknowledged(r) == 0
    finally:
        await r.aclose()
    for chat in (ADMIN, VIEWER):
        assert event_messages(c2, chat) == ["\n".join([
            "Bot events (3):",
            f"{hms[1]} ENTRY shortseller_001 (alpha) BTCUSDT short 0.02 @ 60000, EMA fast 59900.5, EMA slow 60100, "
            "regime ACTIVE, stop 61200, target 57000",
            f"{hms[2]} EXIT lxalgo_001 (bravo) ETHUSDT 0.5 @ 3100, PnL -12.35 USDT (-0.80%), held 2h 5m, reason sl",
            f"{hms[3]} GUARD TRIPPED momentum_001 (charlie): guard day_loss, reason -3.1% today"])]


async def groups_ready(r: Redis) -> None:
    """Until the running relay has created its consumer group on every bot's stream."""
    import asyncio
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        try:
            names = [[g["name"] for g in await r.xinfo_groups(f"events:{b}")] for b in BOTS]
            if names == [[EVENTS_GROUP]] * len(BOTS):
                return
        except ResponseError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "no consumer group"
        await asyncio.sleep(0.05)


async def test_events_written_while_the_telegram_bot_is_down_are_delivered_after_it_starts(c2: C2Harness) -> None:
    r = redis_for(c2.stack.redis, 0)
    await groups_ready(r)  # the group exists: what follows is a stop, not a first start
    await c2.service.stop()
    restarted = C2Service(c2.service.telegram, c2.stack.db, c2.stack.redis, c2.service.settings)
    try:
        await write(r, event("halted", "lxalgo_001", guard="week_loss", until="2026-12-07T00:00:00Z"),
                    event("size_changed", "lxalgo_001", factor="0.5"))
        assert await unacknowledged(r) == 0 and event_messages(c2, ADMIN) == []
        await restarted.start()
        for chat in (ADMIN, VIEWER):
            msg = await c2.api.wait_for("sendMessage", to(chat, "Bot events (2):"))
            assert "HALTED lxalgo_001 (bravo): guard week_loss, until 2026-12-07T00:00:00Z" in msg.text
            assert "SIZE CHANGED lxalgo_001 (bravo): factor 0.5" in msg.text
        await until(lambda: restarted.events.delivered == 2)
        assert await unacknowledged(r) == 0
    finally:
        await restarted.stop()
        await r.aclose()


async def test_an_event_is_acknowledged_only_after_delivery(c2: C2Harness) -> None:
    """Telegram answers 429 (retry after 60 s) to the first chat; the Telegram bot is stopped
    meanwhile: the event is still unacknowledged, and the restarted bot delivers it to both chats."""
    r = redis_for(c2.stack.redis, 0)
    restarted = C2Service(c2.service.telegram, c2.stack.db, c2.stack.redis, c2.service.settings)
    try:
        c2.api.fail_next("sendMessage", times=1, retry_after_s=60)
        await write(r, event("order_rejected", "momentum_001", symbol="BTCUSDT", code=110007, message="no margin"))
        await until(lambda: len(event_messages(c2, ADMIN)) + len(event_messages(c2, VIEWER)) == 1)  # the 429
        await c2.service.stop()
        assert await unacknowledged(r) == 1
        mark = len(c2.api.calls)
        await restarted.start()
        for chat in (ADMIN, VIEWER):
            msg = await c2.api.wait_for("sendMessage", to(chat, "Bot event:"), after=mark)
            assert msg.text.endswith("ORDER REJECTED momentum_001 (charlie): symbol BTCUSDT, code 110007, "
                                     "message no margin")
        await until(lambda: restarted.events.delivered == 1)
        assert await unacknowledged(r) == 0
    finally:
        await restarted.stop()
        await r.aclose()


async def test_a_switched_off_kind_is_not_sent(c2: C2Harness) -> None:
    await c2.service.stop()
    settings = c2.service.settings.model_copy(update={"alert_kinds_off": "summary,regime_change"})
    r = redis_for(c2.stack.redis, 0)
    restarted = C2Service(c2.service.telegram, c2.stack.db, c2.stack.redis, settings)
    try:
        await restarted.start()
        await write(r, event("summary", "momentum_001", trades=3), event("regime_change", "momentum_001", regime="X"),
                    event("stop_breakeven", "momentum_001", symbol="SOLUSDT", stop="150.5"))
        msg = await c2.api.wait_for("sendMessage", to(ADMIN, "Bot event:"))
        await until(lambda: restarted.events.delivered == 1)
        assert await unacknowledged(r) == 0  # the switched-off ones are acknowledged too
    finally:
        await restarted.stop()
        await r.aclose()
    assert msg.text.endswith("STOP TO BREAKEVEN momentum_001 (charlie): symbol SOLUSDT, stop 150.5")
    assert not [t for t in event_messages(c2, ADMIN) + event_messages(c2, VIEWER) if "SUMMARY" in t or "REGIME" in t]


async def test_malformed_entries_are_dead_lettered_and_the_relay_goes_on(c2: C2Harness) -> None:
    r = redis_for(c2.stack.redis, 0)
    try:
        await write(r, {"kind": "entry", "bot_id": "shortseller_001", "at": now_iso(), "data": "{not json"},
                    event("rocket_launch", "shortseller_001"),
                    {"kind": "exit", "bot_id": "shortseller_001", "data": "{}"},
                    {"kind": "control", "bot_id": "shortseller_001", "at": now_iso(), "data": "[1, 2]"})
        await r.xadd("events:lxalgo_001", event("control", "momentum_001"))  # another bot's event
        await until(lambda: c2.service.events.dead_lettered == 5)
        await write(r, event("control", "shortseller_001", command="pause"))
        msg = await c2.api.wait_for("sendMessage", to(ADMIN, "Bot event:"))
        await until(lambda: c2.service.events.delivered == 1)
        dead = await r.xrange(DEAD_LETTERS)
        assert await unacknowledged(r) == 0
    finally:
        await r.aclose()
    assert msg.text.endswith("CONTROL shortseller_001 (alpha): command pause")
    assert [f["reason"] for _id, f in dead] == [
        "data is not JSON", "unknown kind 'rocket_launch'", "missing at", "data is not a JSON object",
        "bot_id 'momentum_001' on events:lxalgo_001"]
    assert dead[0][1]["field:data"] == "{not json" and dead[0][1]["stream"] == "events:shortseller_001"
    assert len(event_messages(c2, ADMIN)) == 1
