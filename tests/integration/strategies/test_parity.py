"""PARITY: the same strategy gives the same trades in the backtester and as a live process.

ema_cross (short EMAs, tight exchange-side stop-loss and take-profit so both fire) runs as a real
process (`python -m strategies.run`) against the simulated venue held at every candle close until the
test steps it (tests/support/parity.py `run_held`: each step once the bot handled the candle and sent
what it decided), with its candles and fills coming through the real listener, its state in PostgreSQL
through PgBouncer and its feeds in Redis. Afterwards the backtester runs the same strategy over the
venue's own candles of that window, from the same warm-up. The fills (candle, side, quantity,
price, reason) and the round trips (entry and exit candle, side, quantity, prices, exit reason)
must be equal, trade for trade, and the live run itself must hold exchange-side stop-loss and
take-profit fills.
"""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from services.bybit_sim.handle import VenueProcess
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.backtest.engine import Backtest
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from tests.integration.listener.conftest import KEYS
from tests.support.live_bot import FIVE_MIN_MS, BotProcess, backtest_fills, dump, live_fills, round_trips
from tests.support.parity import HELD, SPEED, before, bot_env, run_held, venue_window
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

BOT_ID = "momentum_001"
_, API_KEY, API_SECRET = KEYS[BOT_ID]
SYMBOL = "BTCUSDT"
SETTINGS = {"bot_id": BOT_ID, "symbols": SYMBOL, "fast": "3", "slow": "8", "qty": "0.01",
            "stop_loss_pct": "0.3", "take_profit_pct": "0.4"}
BARS = 150  # candles the live bot decides on
BALANCE = "1000000"


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(API_KEY, API_SECRET, BALANCE)], speed=SPEED, extra_args=HELD) as v:
        yield v


async def test_live_trades_equal_backtest_trades(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    bot = BotProcess("ema_cross", [f"{k}={v}" for k, v in SETTINGS.items()], bot_env(stack, venue, [BOT_ID]))
    live = await run_held(stack, venue, bot, BOT_ID, SYMBOL, API_KEY, BARS)

    # The backtester over the venue's candles: the same warm-up, decisions from the first candle the
    # live bot handled to the last one, whose orders fill in the candle after it.
    candles = await venue_window(venue, SYMBOL, live)
    config = EmaCrossConfig.model_validate({**SETTINGS, "symbols": (SYMBOL,)})
    bt = Backtest(EmaCross(config), {SYMBOL: candles}, start_ms=live.first_close_ms, instruments=sim_instruments(),
                  settings=RunSettings(initial_balance=Decimal(BALANCE)))
    result = bt.run()

    horizon = live.end_candle_ms + FIVE_MIN_MS  # the backtest's data ends here; compare what happened before it
    expected = before(backtest_fills(result.fills), horizon)
    got = before(live_fills(live.executions, BOT_ID), horizon)
    reasons = {f.reason for f in expected}
    assert len(expected) >= 10 and {"sl", "tp", "exit", "entry"} <= reasons, (
        f"the window must trade often, with stops and take-profits firing: {reasons}, {len(expected)} fills")
    print(f"parity: {len(expected)} fills, {len(round_trips(expected))} trades, reasons {sorted(reasons)}")
    assert got == expected, f"live:\n{dump(got)}\nbacktest:\n{dump(expected)}\n{live.log_tail}"
    # the exchange's own stops fired in the live run: fills of the venue's StopLoss and TakeProfit orders
    stop_types = {e.get("stopOrderType") for e in live.executions if e["execType"] == "Trade"}
    assert {"StopLoss", "TakeProfit"} <= stop_types, stop_types
    assert round_trips(got) == round_trips(expected)
    assert all(t.exit_candle_ms >= t.entry_candle_ms for t in round_trips(got))
