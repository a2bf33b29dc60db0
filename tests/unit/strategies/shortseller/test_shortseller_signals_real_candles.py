"""ShortSeller's regime, cross and entry rules bar by bar over the shipped real 5-minute candles,
against an independent vectorised reading of the same table (pandas over whole columns)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies.shortseller.config import default_config
from strategies.shortseller.signals import (
    BarValues,
    DailyCrosses,
    Regime,
    count_crosses,
    crossed_emas,
    crosses_today,
    entry_allowed,
    regime,
)

DATA = Path(__file__).resolve().parents[4] / "services" / "bybit_sim" / "data"
CFG = default_config()


def sma_seeded_ema(close: np.ndarray, n: int) -> np.ndarray:
    """Reference EMA for this test: the mean of the first n closes, then alpha = 2/(n+1)."""
    out = np.full(close.shape, np.nan)
    out[n - 1] = close[:n].mean()
    alpha = 2.0 / (n + 1)
    for i in range(n, len(close)):
        out[i] = out[i - 1] + alpha * (close[i] - out[i - 1])
    return out


@pytest.mark.parametrize("symbol", CFG.symbols)
def test_rules_bar_by_bar_equal_the_vectorised_table(symbol: str) -> None:
    rules = CFG.for_symbol(symbol)
    df = pd.read_csv(DATA / f"bybit_{symbol}_5m_2025-04_2025-07.csv.gz", dtype={"close": str})
    close_text = df["close"].to_numpy()
    close = close_text.astype(float)
    decided_at = pd.to_datetime(df["timestamp"], utc=True) + timedelta(minutes=5)  # a bar is decided at its close
    fast, slow = sma_seeded_ema(close, rules.ema_fast_len), sma_seeded_ema(close, rules.ema_slow_len)

    # vectorised: the table read over whole columns
    v = pd.DataFrame({"close": close, "fast": fast, "slow": slow, "day": decided_at.dt.date})
    v = v.iloc[rules.ema_slow_len - 1:].reset_index(drop=True)
    prev = v.shift(1)
    crosses = ((prev.close >= prev.fast) & (v.close < v.fast)).astype(int) + \
              ((prev.close >= prev.slow) & (v.close < v.slow)).astype(int)
    crosses.iloc[0] = 0
    active = (v.close < v.fast) & (v.close < v.slow)
    before = crosses.groupby(v.day).cumsum() - crosses
    v_entries = (crosses > 0) & active & (before < rules.daily_cross_cap)

    # bar by bar, as the strategy will call the rules (flat, no cooldown: the entry rule alone)
    counter: DailyCrosses | None = None
    last: BarValues | None = None
    s_crosses, s_active, s_entries = [], [], []
    for i in range(rules.ema_slow_len - 1, len(close)):
        now = decided_at.iloc[i].to_pydatetime()
        bar = BarValues(close=Decimal(close_text[i]), ema_fast=Decimal(fast[i]), ema_slow=Decimal(slow[i]))
        crossed = crossed_emas(last, bar)
        reg = regime(bar.close, bar.ema_fast, bar.ema_slow, rules.require_ema_order)
        refused = entry_allowed(crossed=bool(crossed), regime=reg, flat=True, last_entry_at=None, now=now,
                                crosses_before=crosses_today(counter, now), rules=rules)
        counter = count_crosses(counter, now, len(crossed))
        last = bar
        s_crosses.append(len(crossed))
        s_active.append(reg is Regime.ACTIVE)
        s_entries.append(refused is None)

    assert s_crosses == crosses.tolist()
    assert s_active == active.tolist()
    assert s_entries == v_entries.tolist()
    # the data exercise the rules: many crosses, some entries, both regimes, and days over the cap
    assert sum(s_crosses) > 100 and 10 < sum(s_entries) < sum(s_crosses)
    assert ((crosses > 0) & active).sum() > v_entries.sum()
    assert 0.1 < np.mean(s_active) < 0.9
