"""Replayed Bybit 5-minute candles and the continuous price path drawn through them.

Prices are held as integer ticks so interpolation is exact and cheap; `Decimal` comes out.
Within a candle the path runs open -> first extreme -> second extreme -> close (low first on an up
candle, high first on a down candle), each leg a third of the candle, so every replayed candle
re-aggregates to exactly its recorded OHLC. Past the end of the data the path wraps around.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from fractions import Fraction
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from services.bybit_sim.instruments import SimInstrument
from services.bybit_sim.triggers import Move

CANDLE_MS = 300_000
LEG_MS = CANDLE_MS // 3
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Candle:
    start_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: Decimal


@dataclass(frozen=True)
class Ohlcv:
    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal


def parse_candles(text: str, tick: Decimal) -> list[Candle]:
    """CSV `timestamp,open,high,low,close,volume` -> candles in ticks; the last (unfinished) row is dropped."""
    rows = [line for line in text.splitlines()[1:] if line.strip()]
    out: list[Candle] = []
    for line in rows[:-1]:
        ts, o, h, low, c, v = line.split(",")
        start_ms = int(datetime.fromisoformat(ts).timestamp() * 1000)
        out.append(Candle(start_ms, *(int((Decimal(x) / tick).to_integral_value()) for x in (o, h, low, c)),
                          volume=Decimal(v)))
    return out


def load_candles(instrument: SimInstrument) -> list[Candle]:
    path = next(DATA_DIR.glob(f"bybit_{instrument.symbol}_5m_*.csv.gz"))
    with gzip.open(path, "rt") as fh:
        return parse_candles(fh.read(), instrument.tick_size)


def _vertices(c: Candle) -> tuple[int, int, int, int]:
    if c.close >= c.open:
        return c.open, c.low, c.high, c.close
    return c.open, c.high, c.low, c.close


class PricePath:
    """Price of one symbol as a pure function of venue time (ms)."""

    def __init__(self, instrument: SimInstrument, candles: list[Candle], shift_ms: int = 0) -> None:
        """`shift_ms`: the candles are replayed that much later than they were recorded (`--wall-replay`)."""
        if not candles:
            raise ValueError(f"no candles for {instrument.symbol}")
        self.instrument = instrument
        self.candles = candles
        self.start_ms = candles[0].start_ms + shift_ms
        self.span_ms = len(candles) * CANDLE_MS

    def _locate(self, t_ms: int) -> tuple[Candle, int]:
        offset = (t_ms - self.start_ms) % self.span_ms
        return self.candles[offset // CANDLE_MS], offset % CANDLE_MS

    def ticks_at(self, t_ms: int) -> int:
        candle, within = self._locate(t_ms)
        v = _vertices(candle)
        leg = min(within // LEG_MS, 2)
        a, b = v[leg], v[leg + 1]
        return a + (b - a) * (within - leg * LEG_MS) // LEG_MS

    def _ticks_to(self, t_ms: int) -> int:
        """The price up to the end of millisecond t: a candle's last millisecond ends at its close."""
        candle, within = self._locate(t_ms)
        return candle.close if within == CANDLE_MS - 1 else self.ticks_at(t_ms)

    def price_at(self, t_ms: int) -> Decimal:
        return self.ticks_at(t_ms) * self.instrument.tick_size

    def moves(self, t0_ms: int, t1_ms: int) -> list[Move]:
        """The path from venue time t0 to t1 (t0 <= t1): each leg continuous, each candle boundary a gap
        from the close to the next open (see triggers.py); zero-length moves are left out. A piece of a
        leg carries the times its prices have on the leg's straight line, so `Move.time_at` gives the
        same instant for a price however the walk cut the leg into pieces."""
        tick = self.instrument.tick_size
        out: list[Move] = []
        cur, t = self.ticks_at(t0_ms), t0_ms
        while True:
            candle, within = self._locate(t)
            start = t - within
            v = _vertices(candle)
            for k in (1, 2, 3):
                boundary = start + k * LEG_MS
                if boundary <= t:
                    continue
                a, b, leg_start = v[k - 1], v[k], boundary - LEG_MS
                end = self.ticks_at(t1_ms) if boundary > t1_ms else b
                if cur != end:
                    line = Fraction(LEG_MS, b - a)
                    out.append(Move(cur * tick, end * tick, False, leg_start + (cur - a) * line,
                                    leg_start + (end - a) * line))
                if boundary > t1_ms:
                    return out
                cur = b
            t = start + CANDLE_MS
            nxt = self.ticks_at(t)
            if cur != nxt:
                out.append(Move(cur * tick, nxt * tick, True, t, t))
            cur = nxt

    def ohlcv(self, from_ms: int, to_ms: int) -> Ohlcv:
        """Aggregate of the path over [from_ms, to_ms] (inclusive; to_ms >= from_ms)."""
        hi = lo = self.ticks_at(from_ms)
        volume = Decimal(0)
        turnover = Decimal(0)
        t = from_ms - (from_ms - self.start_ms) % CANDLE_MS
        while t <= to_ms:
            candle, _ = self._locate(t)
            seg_from, seg_to = max(t, from_ms), min(t + CANDLE_MS - 1, to_ms)
            if seg_from == t and seg_to == t + CANDLE_MS - 1:
                hi, lo = max(hi, candle.high), min(lo, candle.low)
                share = candle.volume
            else:
                points = [self.ticks_at(seg_from), self._ticks_to(seg_to)]
                points += [p for k, p in ((1, _vertices(candle)[1]), (2, _vertices(candle)[2]))
                           if seg_from <= t + k * LEG_MS <= seg_to]
                hi, lo = max(hi, *points), min(lo, *points)
                share = candle.volume * (seg_to - seg_from + 1) / CANDLE_MS
            volume += share
            turnover += share * candle.close * self.instrument.tick_size
            t += CANDLE_MS
        tick = self.instrument.tick_size
        step = self.instrument.qty_step
        return Ohlcv(from_ms, self.ticks_at(from_ms) * tick, hi * tick, lo * tick, self._ticks_to(to_ms) * tick,
                     volume.quantize(step), turnover.quantize(Decimal("0.0001")))
