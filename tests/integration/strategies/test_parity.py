"""PARITY: the same strategy gives the same trades in the backtester and as a live process.

ema_cross (short EMAs, tight exchange-side stop-loss and take-profit so both fire) runs as a real
process (`python -m strategies.run`) against the simulated venue on its stepped clock, replaying at
high speed, with its candles and fills coming through the real listener, its state in PostgreSQL
through PgBouncer and its feeds in Redis. Afterwards the backtester runs the same strategy over the
venue's own candles of that window, from the same warm-up. The fills (candle, side, quantity,
price, reason) and the round trips (entry and exit candle, side, quantity, prices, exit reason)
must be equal, trade for trade.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.backtest.engine import Backtest
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env
from tests.support.live_bot import (
    FIVE_MIN_MS, BotProcess, backtest_fills, candles_from_rest, dump, live_fills, round_trips, wait_for,
)
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

BOT_ID = "momentum_001"
_, API_KEY, API_SECRET = KEYS[BOT_ID]
SYMBOL = "BTCUSDT"
SETTINGS = {"bot_id": BOT_ID, "symbols": SYMBOL, "fast": "3", "slow": "8", "qty": "0.01",
            "stop_loss_pct": "0.3", "take_profit_pct": "0.4"}
SPEED = 3000  # a 5-minute candle in 0.1 s of wall time between holds
STEPPED = ["--stepped", "--step-quiet-ms", "800", "--step-max-ms", "5000"]  # room for a loaded machine
BARS = 150  # candles the live bot decides on
BALANCE = "1000000"


def bot_env(stack: TestStack, venue: VenueProcess) -> dict[str, str]:
    env = listener_env(stack, venue, [BOT_ID])
    env.update({"STRATEGY_READ_BLOCK_MS": "50", "STRATEGY_HEARTBEAT_INTERVAL_S": "5", "LOG_FORMAT": "json"})
    return env


@pytest.fixture
def stepped_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(API_KEY, API_SECRET, BALANCE)], speed=SPEED, extra_args=STEPPED) as v:
        yield v


async def started_event(stack: TestStack) -> dict[str, Any] | None:
    r = redis_for(stack.redis, 0)
    try:
        for _id, fields in await r.xrange(f"events:{BOT_ID}"):
            if fields.get(b"kind", fields.get("kind")) in (b"started", "started"):
                raw = fields.get(b"data", fields.get("data"))
                return json.loads(raw)
        return None
    finally:
        await r.aclose()


def last_handled(stack: TestStack) -> int | None:
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        row = conn.execute("SELECT value FROM trading.strategy_state WHERE bot_id = %s AND key = %s",
                           (BOT_ID, f"_bar:{SYMBOL}:5m")).fetchone()
    return int(row[0]) if row else None


async def venue_candles(venue: VenueProcess, from_ms: int, to_ms: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    async with BybitRestClient(venue.rest_url) as rest:
        end = to_ms
        while end >= from_ms:
            got = (await rest.get("/v5/market/kline", {"category": "linear", "symbol": SYMBOL, "interval": "5",
                                                        "end": end, "limit": 1000})).result["list"]
            got = [r for r in got if from_ms <= int(r[0]) <= to_ms]
            if not got:
                break
            rows += got
            end = min(int(r[0]) for r in got) - FIVE_MIN_MS
    return rows


async def test_live_trades_equal_backtest_trades(clean_state: TestStack, stepped_venue: VenueProcess) -> None:
    stack, venue = clean_state, stepped_venue
    listener = ListenerProcess(listener_env(stack, venue, [BOT_ID])).start()
    bot = BotProcess("ema_cross", [f"{k}={v}" for k, v in SETTINGS.items()], bot_env(stack, venue))
    try:
        await listener.wait_healthy(stack, [BOT_ID])
        bot.start()
        started = await wait_for(lambda: started_event(stack), 60, f"the bot to start\n{bot.log_tail()}")
        warm = started["warmup"][f"{SYMBOL}:5m"]
        first_close = warm["to_ms"] + 2 * FIVE_MIN_MS  # the first candle handled live closes here

        async def enough() -> bool:
            assert bot.running(), bot.log_tail()
            handled = last_handled(stack)
            return handled is not None and handled + FIVE_MIN_MS >= first_close + (BARS - 1) * FIVE_MIN_MS

        await wait_for(enough, 150, f"{BARS} candles handled\n{bot.log_tail()}", every_s=0.5)
        assert bot.terminate() == 0, bot.log_tail()
        last_start = last_handled(stack)
        assert last_start is not None
        async with VenueAdmin(venue.admin_url) as admin:
            executions = await admin.executions(API_KEY, venue_time=True)
    finally:
        bot.close()
        listener.close()

    # The backtester over the venue's candles: the same warm-up, decisions from the first candle the
    # live bot handled to the last one, whose orders fill in the candle after it.
    end_candle = last_start + FIVE_MIN_MS
    candles = candles_from_rest(await venue_candles(venue, warm["from_ms"], end_candle), SYMBOL)
    assert int(candles.start_ms[0]) == warm["from_ms"] and int(candles.start_ms[-1]) == end_candle
    assert len(candles) == (end_candle - warm["from_ms"]) // FIVE_MIN_MS + 1  # no candle missing
    config = EmaCrossConfig.model_validate({**SETTINGS, "symbols": (SYMBOL,)})
    bt = Backtest(EmaCross(config), {SYMBOL: candles}, start_ms=first_close, instruments=sim_instruments(),
                  settings=RunSettings(initial_balance=Decimal(BALANCE)))
    result = bt.run()

    horizon = end_candle + FIVE_MIN_MS  # the backtest's data ends here; compare what happened before it
    expected = [f for f in backtest_fills(result.fills) if f.candle_ms < horizon]
    got = [f for f in live_fills(executions, BOT_ID) if f.candle_ms < horizon]
    reasons = {f.reason for f in expected}
    assert len(expected) >= 10 and {"sl", "tp", "exit", "entry"} <= reasons, (
        f"the window must trade often, with stops and take-profits firing: {reasons}, {len(expected)} fills")
    print(f"parity: {len(expected)} fills, {len(round_trips(expected))} trades, reasons {sorted(reasons)}")
    assert got == expected, f"live:\n{dump(got)}\nbacktest:\n{dump(expected)}"
    assert round_trips(got) == round_trips(expected)
    assert all(t.exit_candle_ms >= t.entry_candle_ms for t in round_trips(got))
