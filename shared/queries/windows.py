"""Report windows as UTC calendar days (pure: the current time is passed in).

A window is a name (`today`, `7d`, `30d`, `all`) or a number of days written `{n}d` (1 to
MAX_WINDOW_DAYS; `14d` is today and the 13 days before)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

WINDOW_DAYS: dict[str, int | None] = {"today": 1, "7d": 7, "30d": 30, "all": None}
MAX_WINDOW_DAYS = 365
_N_DAYS = re.compile(r"^([0-9]{1,6})d$")


def window_days(window: str) -> int | None:
    """The number of days in the window (None: all of them); ValueError for anything else."""
    if window in WINDOW_DAYS:
        return WINDOW_DAYS[window]
    m = _N_DAYS.match(window)
    if m is None or not 1 <= int(m.group(1)) <= MAX_WINDOW_DAYS:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOW_DAYS)} or 1d..{MAX_WINDOW_DAYS}d")
    return int(m.group(1))


def window_start(window: str, now: datetime) -> date | None:
    """First UTC day inside the window ("7d" is today and the six days before); None for "all"."""
    days = window_days(window)
    if days is None:
        return None
    return now.astimezone(timezone.utc).date() - timedelta(days=days - 1)
