"""Schedules on the runtime's clock (UTC): daily at a time of day, or every period from an offset."""
from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Timer:
    """Fires at every `offset_ms + k * period_ms` (UTC epoch ms). `daily("14:30")` is the usual one."""

    name: str
    period_ms: int
    offset_ms: int = 0

    def __post_init__(self) -> None:
        if self.period_ms <= 0 or not 0 <= self.offset_ms < self.period_ms:
            raise ValueError(f"timer {self.name}: need period > 0 and 0 <= offset < period")

    def next_after(self, t_ms: int) -> int:
        """The first firing strictly after t_ms."""
        k = (t_ms - self.offset_ms) // self.period_ms + 1
        return self.offset_ms + k * self.period_ms


def daily(name: str, at: str) -> Timer:
    """`daily("summary", "08:00")`: every day at that UTC time."""
    try:
        hh, mm = (int(x) for x in at.split(":"))
    except ValueError:
        raise ValueError(f"timer {name}: time {at!r} is not HH:MM") from None
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ValueError(f"timer {name}: time {at!r} is not HH:MM")
    return Timer(name, DAY_MS, (hh * 60 + mm) * 60_000)


def every(name: str, period_ms: int, offset_ms: int = 0) -> Timer:
    return Timer(name, period_ms, offset_ms)
