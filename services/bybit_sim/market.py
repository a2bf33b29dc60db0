"""The venue clock and market data: prices, candles at every Bybit interval, tickers, funding marks."""
from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.bybit_sim.candles import CANDLE_MS, Candle, Ohlcv, PricePath, load_candles
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.render import kline_rest_row, kline_ws_row, num

MINUTE_MS = 60_000
DAY_MS = 86_400_000
FUNDING_INTERVAL_MS = 8 * 3_600_000
WEEK_MS = 7 * DAY_MS
WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-05 was a Monday; Bybit weeks start on Monday
INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class VenueClock:
    """Venue time runs `speed` times faster than the wall clock from a given starting instant."""

    def __init__(self, venue_start_ms: int, speed: float, real_start_ms: int | None = None) -> None:
        self.venue_start_ms = venue_start_ms
        self.speed = speed
        self.real_start_ms = wall_ms() if real_start_ms is None else real_start_ms
        self.hold_ms: int | None = None  # the stepped clock (stepping.py) stops here until released

    def venue_at(self, real_ms: int) -> int:
        t = self.venue_start_ms + int((real_ms - self.real_start_ms) * self.speed)
        return t if self.hold_ms is None or t < self.hold_ms else self.hold_ms

    def now(self) -> int:
        """venue_at(wall_ms()), inlined: prices ask for it several times per order."""
        t = self.venue_start_ms + int((time.time_ns() // 1_000_000 - self.real_start_ms) * self.speed)
        hold = self.hold_ms
        return t if hold is None or t < hold else hold

    def release(self, real_now_ms: int, next_hold_ms: int | None) -> None:
        """Run on from the held instant (no venue time is skipped), until the next hold."""
        if self.hold_ms is not None:
            self.venue_start_ms, self.real_start_ms = self.hold_ms, real_now_ms
        self.hold_ms = next_hold_ms


def wall_replay_cycle(candles: dict[str, list[Candle]]) -> int:
    """How many candles of each symbol `--wall-replay` replays, over and over: the whole weeks of data that
    every symbol has, so a wrap keeps the weekday and the time of day (needs two weeks: one of history)."""
    weeks = min(len(c) for c in candles.values()) * CANDLE_MS // WEEK_MS
    if weeks < 2:
        raise ValueError(f"--wall-replay needs two weeks of candles, the data holds {weeks}")
    return weeks * WEEK_MS // CANDLE_MS


def wall_replay_shift_ms(now_ms: int, data_start_ms: int) -> int:
    """The whole number of weeks `--wall-replay` moves the candles forward by: the one that puts `now_ms`
    in the data's second week, [start + 1 week, start + 2 weeks), so a week of real history lies before
    it and the rest of the cycle (`wall_replay_cycle`) after it."""
    return (now_ms - data_start_ms - WEEK_MS) // WEEK_MS * WEEK_MS


def interval_start(interval: str, t_ms: int) -> int:
    if interval == "M":
        d = datetime.fromtimestamp(t_ms / 1000, UTC)
        return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)
    if interval == "W":
        return (t_ms - WEEK_OFFSET_MS) // (7 * DAY_MS) * (7 * DAY_MS) + WEEK_OFFSET_MS
    size = DAY_MS if interval == "D" else int(interval) * MINUTE_MS
    return t_ms // size * size


def interval_next(interval: str, start_ms: int) -> int:
    if interval == "M":
        d = datetime.fromtimestamp(start_ms / 1000, UTC)
        days = calendar.monthrange(d.year, d.month)[1]
        return start_ms + days * DAY_MS
    if interval == "W":
        return start_ms + 7 * DAY_MS
    return start_ms + (DAY_MS if interval == "D" else int(interval) * MINUTE_MS)


class Market:
    def __init__(self, clock: VenueClock, paths: dict[str, PricePath]) -> None:
        self.clock = clock
        self.paths = paths
        self.pins: dict[str, Decimal] = {}
        self.funding_rate = Decimal("0.0001")
        self._stats_cache: dict[tuple[str, int], Ohlcv] = {}
        self._now_cache: dict[str, tuple[int, Decimal]] = {}

    @classmethod
    def replay(cls, clock: VenueClock) -> Market:
        return cls(clock, {s: PricePath(i, load_candles(i)) for s, i in INSTRUMENTS.items()})

    @classmethod
    def wall_replay(cls, clock: VenueClock, shift_ms: int | None = None) -> tuple[Market, int]:
        """`--wall-replay`: the candles moved forward by whole weeks (`shift_ms`, else chosen for the
        clock's now) and cut to whole weeks, which the path repeats past their end. Returns the market and
        its shift."""
        loaded = {s: load_candles(i) for s, i in INSTRUMENTS.items()}
        cycle = wall_replay_cycle(loaded)
        if shift_ms is None:
            shift_ms = wall_replay_shift_ms(clock.now(), min(c[0].start_ms for c in loaded.values()))
        paths = {s: PricePath(INSTRUMENTS[s], c[:cycle], shift_ms) for s, c in loaded.items()}
        return cls(clock, paths), shift_ms

    def data_start_ms(self) -> int:
        return min(p.start_ms for p in self.paths.values())

    def price(self, symbol: str, venue_ms: int | None = None) -> Decimal:
        pinned = self.pins.get(symbol)
        if pinned is not None:
            return pinned
        if venue_ms is not None:
            return self.paths[symbol].price_at(venue_ms)
        now = self.clock.now()
        cached = self._now_cache.get(symbol)
        if cached is None or cached[0] != now:
            cached = self._now_cache[symbol] = (now, self.paths[symbol].price_at(now))
        return cached[1]

    def candle(self, symbol: str, interval: str, start_ms: int, upto_ms: int) -> tuple[Ohlcv, int]:
        """The candle of `interval` starting at start_ms, as seen at venue time upto_ms; and its end (ms)."""
        end = interval_next(interval, start_ms) - 1
        path = self.paths[symbol]
        agg = path.ohlcv(start_ms, min(end, upto_ms))
        pinned = self.pins.get(symbol)
        if pinned is not None and upto_ms <= end:
            agg = Ohlcv(agg.start_ms, agg.open, max(agg.high, pinned), min(agg.low, pinned), pinned,
                        agg.volume, agg.turnover)
        return agg, end

    def kline_rows(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None,
                   limit: int) -> list[list[str]]:
        now = self.clock.now()
        end = min(end_ms if end_ms is not None else now, now)
        inst = INSTRUMENTS[symbol]
        rows: list[list[str]] = []
        t = interval_start(interval, end)
        floor = max(interval_start(interval, start_ms) if start_ms is not None else 0, inst.launch_time_ms)
        while len(rows) < limit and t >= floor:
            agg, _ = self.candle(symbol, interval, t, now)
            rows.append(kline_rest_row(agg, inst))
            t = interval_start(interval, t - 1)
        return rows

    def kline_frame_row(self, symbol: str, interval: str, start_ms: int, now_venue: int, confirm: bool,
                        ts_ms: int) -> dict[str, Any]:
        agg, end = self.candle(symbol, interval, start_ms, now_venue)
        return kline_ws_row(agg, INSTRUMENTS[symbol], interval, end, confirm, ts_ms)

    def next_funding_ms(self, venue_ms: int) -> int:
        return (venue_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

    def _day_stats(self, symbol: str, venue_ms: int) -> Ohlcv:
        key = (symbol, venue_ms // CANDLE_MS)
        got = self._stats_cache.get(key)
        if got is None:
            if len(self._stats_cache) > 64:
                self._stats_cache.clear()
            got = self._stats_cache[key] = self.paths[symbol].ohlcv(venue_ms - DAY_MS, venue_ms)
        return got

    def ticker(self, symbol: str) -> dict[str, Any]:
        inst = INSTRUMENTS[symbol]
        v = self.clock.now()
        last = self.price(symbol, v)
        day = self._day_stats(symbol, v)
        prev24 = day.open
        prev1h = self.price(symbol, v - 3_600_000) if symbol not in self.pins else last
        pct = ((last - prev24) / prev24).quantize(Decimal("0.000001")) if prev24 else Decimal(0)
        tick = inst.tick_size
        return {
            "symbol": symbol,
            "tickDirection": "PlusTick" if last >= prev1h else "MinusTick",
            "price24hPcnt": num(pct),
            "lastPrice": inst.price_str(last),
            "prevPrice24h": inst.price_str(prev24),
            "highPrice24h": inst.price_str(max(day.high, last)),
            "lowPrice24h": inst.price_str(min(day.low, last)),
            "prevPrice1h": inst.price_str(prev1h),
            "markPrice": inst.price_str(last),
            "indexPrice": inst.price_str(last),
            "openInterest": num(day.volume / 10),
            "openInterestValue": num((day.volume / 10 * last).quantize(Decimal("0.01"))),
            "turnover24h": num(day.turnover),
            "volume24h": num(day.volume),
            "nextFundingTime": str(self.next_funding_ms(v)),
            "fundingRate": num(self.funding_rate),
            "bid1Price": inst.price_str(last - tick),
            "bid1Size": num(inst.qty_step * 1000),
            "ask1Price": inst.price_str(last),
            "ask1Size": num(inst.qty_step * 1000),
            "fundingIntervalHour": "8",
        }
