"""Time windows for `/v5/execution/list` (at most 7 days each), and resume by interval arithmetic (pure).

Windows are half-open `[start_ms, end_ms)`; the request asks `startTime=start_ms, endTime=end_ms-1`
because Bybit's bounds are inclusive, so neighbouring windows never return the same row twice.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WEEK_MS = 7 * 86_400_000
MAX_MONTHS = 24  # Bybit keeps two years of execution history
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Window:
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not 0 < self.end_ms - self.start_ms <= WEEK_MS:
            raise ValueError(f"window {self.start_ms}..{self.end_ms} is empty or longer than 7 days")

    def params(self) -> dict[str, int]:
        return {"startTime": self.start_ms, "endTime": self.end_ms - 1}

    @property
    def start(self) -> datetime:
        return ms_to_dt(self.start_ms)

    @property
    def end(self) -> datetime:
        return ms_to_dt(self.end_ms)


def ms_to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime; times are UTC-aware")
    return (value - EPOCH) // timedelta(milliseconds=1)


def months_back(now: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's end)."""
    total = now.year * 12 + (now.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day)


def subtract(start_ms: int, end_ms: int, covered: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """`[start, end)` minus the union of the covered half-open intervals, in ascending order."""
    gaps: list[tuple[int, int]] = []
    cursor = start_ms
    for c_start, c_end in sorted(covered):
        if c_end <= cursor or c_start >= end_ms:
            continue
        if c_start > cursor:
            gaps.append((cursor, min(c_start, end_ms)))
        cursor = max(cursor, c_end)
        if cursor >= end_ms:
            break
    if cursor < end_ms:
        gaps.append((cursor, end_ms))
    return gaps


def plan_windows(start_ms: int, end_ms: int, covered: Iterable[tuple[int, int]] = ()) -> list[Window]:
    """What is left to fetch, cut into windows of at most 7 days (counted back from each gap's end),
    oldest first: history then reaches `trading.fills` in execution order, which the PnL triggers
    apply incrementally (an insert older than stored fills replays everything after it)."""
    windows: list[Window] = []
    for g_start, g_end in subtract(start_ms, end_ms, covered):
        cuts: list[Window] = []
        hi = g_end
        while hi > g_start:
            lo = max(g_start, hi - WEEK_MS)
            cuts.append(Window(lo, hi))
            hi = lo
        windows.extend(reversed(cuts))
    return windows
