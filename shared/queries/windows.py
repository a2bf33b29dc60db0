"""Report windows as UTC calendar days (pure: the current time is passed in)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

WINDOW_DAYS: dict[str, int | None] = {"today": 1, "7d": 7, "30d": 30, "all": None}


def window_start(window: str, now: datetime) -> date | None:
    """First UTC day inside the window ("7d" is today and the six days before); None for "all"."""
    if window not in WINDOW_DAYS:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOW_DAYS)}")
    days = WINDOW_DAYS[window]
    if days is None:
        return None
    return now.astimezone(timezone.utc).date() - timedelta(days=days - 1)
