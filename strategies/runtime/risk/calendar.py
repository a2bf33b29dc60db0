"""UTC calendar boundaries the guards reset on. Pure; every time is a tz-aware UTC datetime."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta


def require_utc(now: datetime, name: str = "now") -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be a timezone-aware UTC datetime, got {now!r}")
    return now.astimezone(UTC)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of ``now``'s week."""
    return day_start(now) - timedelta(days=now.weekday())


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_day(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


def next_week(now: datetime) -> datetime:
    return week_start(now) + timedelta(days=7)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def block_start(now: datetime, block_h: int) -> datetime:
    """Start of ``now``'s block of ``block_h`` hours, blocks aligned on 00:00 UTC (00-04, 04-08...)."""
    start = day_start(now)
    return start + timedelta(hours=(now.hour // block_h) * block_h)
