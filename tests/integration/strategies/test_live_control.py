"""A live bot obeys control while the venue's clock is held (no candle prompts it: it acts on the control
message itself), and reconciles before its first decision: a position it
does not know is adopted with the exchange's createdTime, or (STRATEGY_ADOPT_UNKNOWN_POSITIONS=false)
it refuses to trade and says why. Real processes: venue (clock held until the test steps it),
listener, bot; PostgreSQL through PgBouncer; Redis."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.db.pool import open_pool
from shared.queries.control import BotController
from shared.redis_client import redis_for
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env
from tests.support.live_bot import FIVE_MIN_MS, BotProcess, done, events, hold, started_n, step_to_next, wait_for
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
BOT = "lxalgo_001"
_, KEY, SECRET = KEYS[BOT]
SYMBOL = "BTCUSDT"
SETTINGS = [f"bot_id={BOT}", f"symbols={SYMBOL}", "fast=3", "slow=8", "qty=0.01"]
# one clock for fills and candles (execTime in venue time)
HELD = ["--stepped", "--step-quiet-ms", "600000", "--step-max-ms", "600000", "--stamp-clock", "venue"]


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(KEY, SECRET, "1000000")], speed=3000, extra_args=HELD) as v:
        yield v


async def position(rest: BybitRestClient) -> dict[str, Any]:
    rows = (await rest.get("/v5/position/list", {"category": "linear", "symbol": SYMBOL})).result["list"]
    return rows[0] if rows else {"size": "0", "side": ""}


async def run_bot(stack: TestStack, venue: VenueProcess, settings: list[str] = SETTINGS,
                  **env: str) -> tuple[ListenerProcess, BotProcess]:
    listener = ListenerProcess(listener_env(stack, venue, [BOT])).start()
    bot: BotProcess | None = None
    try:
        await listener.wait_healthy(stack, [BOT])
        bot_env = listener_env(stack, venue, [BOT])
        bot_env.update({"STRATEGY_READ_BLOCK_MS": "50", "LOG_FORMAT": "json", **env})
        bot = BotProcess("ema_cross", settings, bot_env).start()
        await wait_for(lambda: started_n(stack, BOT, 1), 60, f"the bot to start\n{bot.log_tail()}")
    except BaseException:
        if bot is not None:
            bot.close()
        listener.close()
        raise
    return listener, bot


async def test_pause_and_flatten_are_obeyed(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    listener, bot = await run_bot(stack, venue)
    pool = await open_pool(stack.db, "c2")
    platform: Redis = redis_for(stack.redis, 0)
    try:
        async with VenueAdmin(venue.admin_url) as admin, BybitRestClient(venue.rest_url, KEY, SECRET) as rest:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            for _ in range(200):  # until the bot holds a position
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT, at - FIVE_MIN_MS), 20, bot.log_tail(), every_s=0.01)
                if Decimal((await position(rest))["size"]):
                    break
            assert Decimal((await position(rest))["size"]), "the bot never opened a position"
            control = BotController(pool, platform)  # as C2 does: pause, then tell the bot to close (trade_sync,
            await control.set_status((BOT,), "paused", by="test")  # which also closes, is not running here)
            assert await control.request_flatten(BOT, by="test") == 1  # the bot heard it

            async def flat() -> bool:
                return Decimal((await position(rest))["size"]) == 0

            await wait_for(flat, 5, f"the bot to flatten\n{bot.log_tail()}", every_s=0.02)
            for _ in range(15):  # paused: no new entry, however the EMAs cross
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT, at - FIVE_MIN_MS), 20, bot.log_tail(), every_s=0.01)
            assert Decimal((await position(rest))["size"]) == 0
    finally:
        await pool.close()
        await platform.aclose()
        bot.close()
        listener.close()
    kinds = [k for k, _ in await events(stack, BOT)]
    assert "control" in kinds and "exit" in kinds


async def open_manual_position(venue: VenueProcess) -> dict[str, Any]:
    async with BybitRestClient(venue.rest_url, KEY, SECRET) as rest:
        await rest.post("/v5/order/create", {"category": "linear", "symbol": SYMBOL, "side": "Sell",
                                             "orderType": "Market", "qty": "0.005"})
        return await position(rest)


async def test_an_unknown_position_is_adopted_with_its_created_time(clean_state: TestStack, held_venue: VenueProcess) -> None:
    pos = await open_manual_position(held_venue)
    listener, bot = await run_bot(clean_state, held_venue)
    try:
        evs = await events(clean_state, BOT)
    finally:
        bot.close()
        listener.close()
    adopted = [d for k, d in evs if k == "position_adopted"]
    assert adopted == [{"symbol": SYMBOL, "qty": "-0.005", "avg_price": pos["avgPrice"],
                        "opened_ms": int(pos["createdTime"])}]


async def test_with_adoption_off_the_bot_refuses_to_trade_and_says_why(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    await open_manual_position(venue)
    listener, bot = await run_bot(stack, venue, STRATEGY_ADOPT_UNKNOWN_POSITIONS="false")
    try:
        async with VenueAdmin(venue.admin_url) as admin:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            for _ in range(40):
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT, at - FIVE_MIN_MS), 20, bot.log_tail(), every_s=0.01)
            executions = await admin.executions(KEY)
    finally:
        bot.close()
        listener.close()
    refused = [d for k, d in await events(stack, BOT) if k == "refusing_to_trade"]
    assert len(refused) == 1 and "BTCUSDT" in refused[0]["reason"] and "ADOPT_UNKNOWN" in refused[0]["reason"]
    assert [e["orderLinkId"] for e in executions] == [""]  # only the manual order: the bot placed nothing


async def test_candles_missing_from_the_stream_are_refilled_from_rest(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    listener, bot = await run_bot(stack, venue)
    r = redis_for(stack.redis, 0)
    try:
        async with VenueAdmin(venue.admin_url) as admin, BybitRestClient(venue.rest_url) as rest:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            for _ in range(3):
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT, at - FIVE_MIN_MS), 20, bot.log_tail(), every_s=0.01)
            listener.terminate()  # candles close while nobody writes the stream
            for _ in range(6):
                at = await step_to_next(admin, at)
            # the last one reaches the stream as the listener writes it; the five before it do not
            start = at - FIVE_MIN_MS
            [row] = [k for k in (await rest.get("/v5/market/kline", {"category": "linear", "symbol": SYMBOL,
                                                                     "interval": "5", "end": start, "limit": 1})
                                 ).result["list"]]
            assert int(row[0]) == start
            await r.xadd(f"klines:{SYMBOL}:5", {"start": str(start), "open": row[1], "high": row[2], "low": row[3],
                                               "close": row[4], "volume": row[5], "turnover": row[6],
                                               "interval": "5", "symbol": SYMBOL}, id=f"{start}-0")
            await wait_for(lambda: done(stack, BOT, start), 30, bot.log_tail(), every_s=0.01)
        lines = [json.loads(ln) for ln in bot.log_lines() if '"candle_gap_refilled"' in ln]
    finally:
        await r.aclose()
        bot.close()
        listener.close()
    assert [(ln["from_ms"], ln["to_ms"], ln["refilled"]) for ln in lines] == [(start - 5 * FIVE_MIN_MS, start - FIVE_MIN_MS, 5)]


async def xadd_candle(r: Redis, rest: BybitRestClient, symbol: str, start: int) -> None:
    """Write one closed candle to the stream as the listener does (the venue's own candle)."""
    [row] = (await rest.get("/v5/market/kline", {"category": "linear", "symbol": symbol, "interval": "5",
                                                 "end": start, "limit": 1})).result["list"]
    assert int(row[0]) == start
    await r.xadd(f"klines:{symbol}:5", {"start": str(start), "open": row[1], "high": row[2], "low": row[3],
                                         "close": row[4], "volume": row[5], "turnover": row[6], "interval": "5",
                                         "symbol": symbol}, id=f"{start}-0")


async def test_candles_of_one_close_are_handled_by_symbol_whatever_order_they_arrive_in(
        clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    two = [s if not s.startswith("symbols=") else "symbols=BTCUSDT,ETHUSDT" for s in SETTINGS]
    listener, bot = await run_bot(stack, venue, two, STRATEGY_BAR_SETTLE_MS="500")
    r = redis_for(stack.redis, 0)
    try:
        async with VenueAdmin(venue.admin_url) as admin, BybitRestClient(venue.rest_url) as rest:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            listener.terminate()  # the test writes the streams from here on
            at = await step_to_next(admin, at)
            start = at - FIVE_MIN_MS
            await xadd_candle(r, rest, "ETHUSDT", start)  # ETH's candle first...
            await asyncio.sleep(0.1)  # ...and BTC's a moment later (the bot is reading meanwhile)
            await xadd_candle(r, rest, "BTCUSDT", start)
            await wait_for(lambda: done(stack, BOT, start, "ETHUSDT"), 20, bot.log_tail(), every_s=0.01)
            await wait_for(lambda: done(stack, BOT, start, "BTCUSDT"), 20, bot.log_tail(), every_s=0.01)
        handled = [json.loads(ln)["symbol"] for ln in bot.log_lines() if '"bar_handled"' in ln]
    finally:
        await r.aclose()
        bot.close()
        listener.close()
    assert handled == ["BTCUSDT", "ETHUSDT"]
