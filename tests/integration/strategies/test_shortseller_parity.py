"""PARITY: ShortSeller gives the same trades in the backtester and as its live process on the venue.

`python -m strategies.shortseller` runs against the simulated venue held at every candle close until
the test steps it (tests/support/parity.py `run_held`), its candles and fills through the real
listener, its state in PostgreSQL, its feeds in Redis. Its rules come from SHORTSELLER_* variables:
short EMAs (the venue replays only a week of history before its start, too little for 240/600) and
tight exits, so that within the window it enters several times (the cooldown refuses some crosses),
its exchange-side stop-loss fires and so does its trailing stop. The backtester then runs ShortSeller
with the same configuration over the venue's own candles of that window from the same warm-up: the
fills (candle, side, quantity, price, reason) and round trips must be equal, trade for trade.
"""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from services.bybit_sim.handle import VenueProcess
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.backtest.engine import Backtest
from strategies.backtest.result import BacktestResult
from strategies.shortseller.config import parse_config
from strategies.shortseller.strategy import ShortSeller
from tests.integration.listener.conftest import KEYS
from tests.support.live_bot import FIVE_MIN_MS, backtest_fills, dump, live_fills, round_trips
from tests.support.parity import HELD, SPEED, LiveRun, ShortSellerProcess, before, bot_env, run_held, venue_window
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

BOT_ID = "shortseller_001"
_, API_KEY, API_SECRET = KEYS[BOT_ID]
SYMBOL = "BTCUSDT"
# Short EMAs; stop 0.3 %, trail 0.1 % armed at 0.15 % profit (both fire in this window), target 2 %.
RULES = {"SHORTSELLER_SYMBOLS": SYMBOL, "SHORTSELLER_EMA_FAST_LEN": "5", "SHORTSELLER_EMA_SLOW_LEN": "13",
         "SHORTSELLER_STOP_LOSS_PCT": "0.3", "SHORTSELLER_TAKE_PROFIT_PCT": "2",
         "SHORTSELLER_TRAIL_DISTANCE_PCT": "0.1", "SHORTSELLER_TRAIL_ACTIVATION_PCT": "0.15"}
VENUE_ARGS = HELD  # exchange times on the replay clock (--stamp-clock venue)
BARS = 80
BALANCE = "1000000"


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(API_KEY, API_SECRET, BALANCE)], speed=SPEED, extra_args=VENUE_ARGS) as v:
        yield v


async def backtest(venue: VenueProcess, live: LiveRun) -> BacktestResult:
    """ShortSeller with the live bot's configuration over the venue's candles of the live window."""
    candles = await venue_window(venue, SYMBOL, live)
    bt = Backtest(ShortSeller(parse_config(RULES)), {SYMBOL: candles}, start_ms=live.first_close_ms,
                  instruments=sim_instruments(), settings=RunSettings(initial_balance=Decimal(BALANCE)))
    return bt.run()


def compare(live: LiveRun, result: BacktestResult) -> None:
    horizon = live.end_candle_ms + FIVE_MIN_MS  # the backtest's data ends here
    expected = before(backtest_fills(result.fills), horizon)
    got = before(live_fills(live.executions, BOT_ID), horizon)
    reasons = [f.reason for f in expected]
    assert reasons.count("entry") >= 2 and "sl" in reasons and "trail" in reasons, (
        f"the window must enter more than once and fire a stop-loss and a trailing stop: {reasons}")
    assert result.refusals.get("shortseller_cooldown", 0) >= 1, result.refusals  # the cooldown refused a cross
    assert got == expected, f"live:\n{dump(got)}\nbacktest:\n{dump(expected)}\n{live.log_tail}"
    assert round_trips(got) == round_trips(expected)
    print(f"shortseller parity: {len(expected)} fills, {len(round_trips(expected))} trades, reasons {reasons}, "
          f"refusals {result.refusals}")


async def test_shortseller_live_trades_equal_backtest_trades(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    bot = ShortSellerProcess(bot_env(stack, venue, [BOT_ID], RULES))
    live = await run_held(stack, venue, bot, BOT_ID, SYMBOL, API_KEY, BARS)
    compare(live, await backtest(venue, live))
