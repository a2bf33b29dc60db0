"""The reference strategy's rule at its edges and on real candles."""
from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from strategies.backtest.runner import BacktestSpec, run
from strategies.examples.ema_cross import EmaCrossConfig, cross
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.indicators import vectorised


def test_cross_edges() -> None:
    assert cross(1.0, 1.0, 1.1, 1.0) == 1  # from equal to above is a cross up
    assert cross(0.9, 1.0, 1.0, 1.0) == 0  # touching is not a cross
    assert cross(1.0, 1.0, 0.9, 1.0) == -1
    assert cross(1.1, 1.0, 1.2, 1.0) == 0


def test_config_is_typed_and_checked() -> None:
    with pytest.raises(ValidationError, match="must be below slow"):
        EmaCrossConfig(fast=30, slow=20)
    with pytest.raises(ValidationError, match="extra"):
        EmaCrossConfig(fsat=3)  # type: ignore[call-arg]


def test_on_real_candles_entries_are_the_next_open_after_a_cross() -> None:
    frm, to = to_ms("2025-05-01"), to_ms("2025-05-15")
    r = run(BacktestSpec("ema_cross", ("BTCUSDT",), frm, to, settings=(("fast", "8"), ("slow", "21"))))
    c = load_shipped("BTCUSDT", "5m")
    f, s = vectorised.ema(c.close, 8), vectorised.ema(c.close, 21)
    opens = dict(zip(c.start_ms.tolist(), c.open.tolist()))
    crosses = [int(c.close_ms[i]) for i in range(1, len(c)) if frm <= c.close_ms[i] < to and
               cross(f[i - 1], s[i - 1], f[i], s[i]) != 0]
    assert len(r.trades) > 50
    entries = sorted({t.entry_ms for t in r.trades})
    assert entries == [t for t in crosses if t in opens][: len(entries)]  # every cross (but a last one) enters
    for t in r.trades:
        assert t.entry_price == Decimal(repr(opens[t.entry_ms]))
        assert t.exit_reason == "exit" and t.exit_ms in opens
    sides = [t.side for t in sorted(r.trades, key=lambda t: t.entry_ms)]
    assert all(a != b for a, b in zip(sides, sides[1:]))  # always in, reversing


def test_incremental_indicators_give_the_same_decisions_as_vectorised() -> None:
    """What the live process computes bar by bar decides as the backtest's whole-array indicators."""
    from strategies.backtest.data import sim_instruments
    from strategies.backtest.engine import Backtest
    from strategies.examples.ema_cross import EmaCross

    data = {s: load_shipped(s, "5m").select(to_ms("2025-05-20"), to_ms("2025-06-10")) for s in ("BTCUSDT", "SOLUSDT")}
    logs = []
    for incremental in (False, True):
        cfg = EmaCrossConfig(symbols=("BTCUSDT", "SOLUSDT"), fast=9, slow=30, stop_loss_pct=Decimal("0.8"))
        bt = Backtest(EmaCross(cfg), data, start_ms=to_ms("2025-05-25"), instruments=sim_instruments(),
                      incremental=incremental)
        bt.run()
        logs.append(bt.decision_log)
    assert len(logs[0]) > 100 and logs[0] == logs[1]


def test_a_4h_strategy_on_1h_candles_decides_at_4h_closes_and_stops_on_the_1h_path() -> None:
    r = run(BacktestSpec("ema_cross", ("BTCUSDT", "SOLUSDT"), to_ms("2023-06-01"), to_ms("2024-01-01"), interval="1h",
                    settings=(("interval", "4h"), ("stop_loss_pct", "3"), ("take_profit_pct", "6"))))
    four_h = 4 * 3_600_000
    assert r.interval == "1h" and len(r.trades) > 30
    assert all(t.entry_ms % four_h == 0 for t in r.trades)  # decided on a 4h close, filled at that open
    assert all(t.exit_ms % four_h == 0 for t in r.trades if t.exit_reason == "exit")
    stops = [t for t in r.trades if t.exit_reason in ("sl", "tp")]
    assert stops and any(t.exit_ms % 3_600_000 for t in stops)  # fired inside a 1h candle
    for t in stops:
        sign = 1 if (t.side == "long") == (t.exit_reason == "tp") else -1
        moved = (t.exit_price - t.entry_price) / t.entry_price * 100 * sign
        assert moved > 0  # a take-profit above / a stop below a long's entry (the reverse for a short)
