"""Backup schedule and retention (30 daily, 12 weekly, 12 monthly), on dates."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from infra.backup import (Retention, UsageError, dump_name, next_run, parse_backup_at, parse_dump_name,
                          to_keep)


def at(day: date, hour: int = 3, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def test_a_year_of_daily_dumps() -> None:
    stamps = [at(d) for d in days(date(2026, 1, 1), date(2026, 12, 31))]
    kept = {s.date() for s in to_keep(stamps)}
    daily = set(days(date(2026, 12, 2), date(2026, 12, 31)))
    # 2026-12-31 is a Thursday (its week's newest); the 11 weeks before end on Sundays
    weekly = {date(2026, 12, 31)} | {date(2026, 12, 27) - timedelta(weeks=n) for n in range(11)}
    monthly = {date(2026, m + 1, 1) - timedelta(1) for m in range(1, 12)} | {date(2026, 12, 31)}
    assert kept == daily | weekly | monthly
    assert len(kept) == 30 + 7 + 11
    assert min(kept) == date(2026, 1, 31)


def test_only_the_newest_dump_of_a_day_is_kept() -> None:
    day = date(2026, 6, 10)
    stamps = [at(day, 3), at(day, 12), at(day, 23, 59)]
    assert to_keep(stamps) == {at(day, 23, 59)}


def test_a_gap_in_the_backups_does_not_expire_the_ones_before_it() -> None:
    """Periods are counted among those that have a dump, not back from today."""
    before = [at(d) for d in days(date(2026, 1, 1), date(2026, 3, 31))]
    after = [at(date(2026, 9, 1))]
    kept = to_keep(before + after)
    assert at(date(2026, 9, 1)) in kept
    assert {at(d) for d in days(date(2026, 3, 3), date(2026, 3, 31))} <= kept  # 29 days + Sept 1 = 30 daily


def test_keeping_is_stable_and_follows_the_policy() -> None:
    stamps = [at(date(2024, 1, 1)) + timedelta(hours=7 * n) for n in range(3000)]
    kept = to_keep(stamps)
    assert to_keep(kept) == kept
    assert len(to_keep(stamps, Retention(daily=1, weekly=1, monthly=1))) == 1
    assert len(to_keep(stamps, Retention(daily=2, weekly=0, monthly=0))) == 2
    assert to_keep([]) == set()


def test_dump_names_round_trip() -> None:
    stamp = datetime(2026, 12, 6, 3, 0, 5, tzinfo=UTC)
    assert dump_name(stamp) == "trading_db-20261206T030005Z.dump"
    assert parse_dump_name(dump_name(stamp)) == stamp
    for other in ("trading_db-2026.dump", ".partial-x.dump", "notes.txt", "trading_db-20261206T030005Z.dump.tmp"):
        assert parse_dump_name(other) is None


def test_next_run() -> None:
    three = parse_backup_at("03:00")
    assert next_run(datetime(2026, 12, 6, 2, 59, 59, tzinfo=UTC), three) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert next_run(datetime(2026, 12, 6, 3, 0, tzinfo=UTC), three) == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert next_run(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), three) == datetime(2027, 1, 1, 3, 0, tzinfo=UTC)
    # 04:30 in UTC+2 is 02:30 UTC: today's run is still ahead
    plus2 = timezone(timedelta(hours=2))
    assert next_run(datetime(2026, 12, 6, 4, 30, tzinfo=plus2), three) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert parse_backup_at(" 23:59 ") == time(23, 59, tzinfo=UTC)
    assert parse_backup_at("03:00:30") == time(3, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["3:00", "24:00", "03:60", "", "0300", "03:00:60", "03:00:", "noon"])
def test_bad_backup_time(text: str) -> None:
    with pytest.raises(UsageError, match="BACKUP_AT must be HH:MM"):
        parse_backup_at(text)
