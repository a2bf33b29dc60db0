"""Look-ahead guard for every strategy's tests.

1. Cuts: run the strategy on the history cut at candle K and on the full history; every decision
   (order intent with the time it was decided) up to K's close must be identical (what fills at
   the next open decide at K's close time is compared at later cuts). Checked for every
   K in a window, not only the candles where something traded, because a peek at the future can as
   well suppress a trade as create one.
2. Warm-up: decisions over a window are identical whether the history starts one warm-up before it
   (as the strategy declares) or two warm-ups before it; otherwise the declared warm-up is too short
   and results depend on where the data happens to start.

Both run the real backtester, so vectorised indicators computed over a cut history are checked too:
an indicator that reads later candles gives other values at the cut.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments, warmup_ms
from strategies.backtest.engine import Backtest
from strategies.runtime.candles import Candles
from strategies.runtime.orders import Decision
from strategies.runtime.strategy import Strategy

MakeStrategy = Callable[[], Strategy[Any]]
# Handlers of events that happen after a candle's close: a market order decided on the close fills at
# the next candle's open, which has the close's timestamp. A run cut at T has no next candle, so what
# these decide at exactly T is compared at the later cuts instead.
AFTER_CLOSE_CAUSES = frozenset({"on_fill", "on_position", "on_rejected"})


@dataclass(frozen=True)
class Mismatch:
    check: str  # "cut" | "warmup"
    at_ms: int  # the cut (a candle close) or the window start
    index: int  # position in the decision list where the runs part
    expected: Decision | None  # from the full (or longer) history
    got: Decision | None

    def __str__(self) -> str:
        return f"{self.check} at {self.at_ms}: decision #{self.index}: full history {self.expected}, other {self.got}"


class LookaheadError(AssertionError):
    pass


def decisions(make: MakeStrategy, candles: Mapping[str, Candles], start_ms: int,
              settings: RunSettings = RunSettings()) -> list[Decision]:
    bt = Backtest(make(), candles, start_ms=start_ms, settings=settings, instruments=sim_instruments())
    bt.run()
    return bt.decision_log


def _first_difference(a: Sequence[Decision], b: Sequence[Decision]) -> int | None:
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i] != b[i]:
            return i
    return None


def _known_at(d: Decision, cut: int) -> bool:
    return d.time_ms < cut or (d.time_ms == cut and d.cause not in AFTER_CLOSE_CAUSES)


def check_cuts(make: MakeStrategy, candles: Mapping[str, Candles], start_ms: int, cuts: Sequence[int],
               settings: RunSettings = RunSettings()) -> list[Mismatch]:
    """`cuts` are candle close times; the run cut at T sees only candles that opened before T."""
    full = decisions(make, candles, start_ms, settings)
    out = []
    for cut in cuts:
        short = {s: c.select(None, cut) for s, c in candles.items()}
        got = [d for d in decisions(make, short, start_ms, settings) if _known_at(d, cut)]
        want = [d for d in full if _known_at(d, cut)]
        i = _first_difference(want, got)
        if i is not None:
            out.append(Mismatch("cut", cut, i, want[i] if i < len(want) else None, got[i] if i < len(got) else None))
    return out


def check_warmup(make: MakeStrategy, candles: Mapping[str, Candles], start_ms: int,
                 settings: RunSettings = RunSettings()) -> list[Mismatch]:
    """`candles` must reach two warm-ups before start_ms."""
    w = warmup_ms(list(make().subscriptions()))
    one = decisions(make, {s: c.select(start_ms - w, None) for s, c in candles.items()}, start_ms, settings)
    two = decisions(make, {s: c.select(start_ms - 2 * w, None) for s, c in candles.items()}, start_ms, settings)
    for s, c in candles.items():
        if len(c) == 0 or c.start_ms[0] > start_ms - 2 * w:
            raise ValueError(f"{s}: candles start after two warm-ups ({2 * w} ms) before the window")
    i = _first_difference(two, one)
    if i is None:
        return []
    return [Mismatch("warmup", start_ms, i, two[i] if i < len(two) else None, one[i] if i < len(one) else None)]


def assert_no_lookahead(make: MakeStrategy, candles: Mapping[str, Candles], window_from_ms: int, window_to_ms: int,
                        *, every: int = 1, settings: RunSettings = RunSettings()) -> int:
    """Both checks over [window_from_ms, window_to_ms): cuts at every `every`-th candle close of the
    window (of the first symbol's candles), warm-up at the window start. Returns the number of cuts.

    `candles` must start at least two warm-ups before window_from_ms. Raises LookaheadError."""
    w = warmup_ms(list(make().subscriptions()))
    hist = {s: c.select(window_from_ms - 2 * w, window_to_ms) for s, c in candles.items()}
    first = hist[sorted(hist)[0]]
    closes = [int(t) for t in first.close_ms.tolist() if window_from_ms < t <= window_to_ms][::every]
    problems = check_warmup(make, hist, window_from_ms, settings)
    # cut runs start one warm-up before the window: long enough (the warm-up check says so) and shorter
    cut_hist = {s: c.select(window_from_ms - w, None) for s, c in hist.items()}
    problems += check_cuts(make, cut_hist, window_from_ms, closes, settings)
    if problems:
        raise LookaheadError(f"{len(problems)} look-ahead problem(s); first: {problems[0]}")
    return len(closes)
