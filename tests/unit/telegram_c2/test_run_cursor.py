"""The reconciler alert cursor (pure): no finished run skipped, none reported twice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.telegram_c2.run_cursor import GAP_GRACE_S, Run, RunCursor, step

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def run(i: int, status: str = "ok", missing: int = 1, age_s: float = 5.0) -> Run:
    return Run(i, f"bot{i}", status, missing, missing, NOW - timedelta(seconds=age_s))


def test_a_running_run_holds_the_watermark_and_is_reported_when_it_finishes() -> None:
    report, cur = step(RunCursor(10), [run(11, "running"), run(12), run(13, missing=0)], NOW)
    assert [r.id for r in report] == [12] and cur == RunCursor(10, frozenset({12}))
    report, cur = step(cur, [run(11, "running"), run(12), run(13, missing=0)], NOW)
    assert report == [] and cur == RunCursor(10, frozenset({12}))
    report, cur = step(cur, [run(11, "failed"), run(12), run(13, missing=0)], NOW)
    assert [r.id for r in report] == [11] and cur == RunCursor(13)


def test_a_gap_in_ids_waits_for_the_grace_period() -> None:
    report, cur = step(RunCursor(10), [run(12)], NOW)
    assert [r.id for r in report] == [12] and cur == RunCursor(10, frozenset({12}))
    report, cur = step(cur, [run(12, age_s=GAP_GRACE_S + 1)], NOW)
    assert report == [] and cur == RunCursor(12)


def test_the_cursor_round_trips_and_reads_the_old_form() -> None:
    assert RunCursor.load(None) is None
    assert RunCursor.load("42") == RunCursor(42)
    cur = RunCursor(7, frozenset({9, 8}))
    assert RunCursor.load(cur.dump()) == cur
