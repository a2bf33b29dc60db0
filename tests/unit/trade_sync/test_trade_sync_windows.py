from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.trade_sync.windows import WEEK_MS, Window, dt_to_ms, months_back, ms_to_dt, plan_windows, subtract


def test_months_back_keeps_the_instant_and_clamps_the_day() -> None:
    assert months_back(datetime(2026, 11, 23, 17, 5, 1, 123000, tzinfo=UTC), 3) == \
        datetime(2026, 8, 23, 17, 5, 1, 123000, tzinfo=UTC)
    assert months_back(datetime(2026, 5, 31, tzinfo=UTC), 3) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_back(datetime(2026, 1, 15, tzinfo=UTC), 1) == datetime(2025, 12, 15, tzinfo=UTC)
    assert months_back(datetime(2026, 3, 15, tzinfo=UTC), 24) == datetime(2024, 3, 15, tzinfo=UTC)


def test_ms_round_trip_is_exact() -> None:
    ms = 1_788_486_858_123
    assert dt_to_ms(ms_to_dt(ms)) == ms
    assert ms_to_dt(ms).microsecond == 123_000
    with pytest.raises(ValueError):
        dt_to_ms(datetime(2026, 1, 1))


def test_window_asks_inclusive_bounds_that_do_not_overlap_the_next_window() -> None:
    w = Window(1_000, 1_000 + WEEK_MS)
    assert w.params() == {"startTime": 1_000, "endTime": 1_000 + WEEK_MS - 1}
    with pytest.raises(ValueError):
        Window(0, WEEK_MS + 1)
    with pytest.raises(ValueError):
        Window(5, 5)


def test_plan_is_oldest_first_contiguous_and_at_most_a_week_each() -> None:
    start, end = 0, 3 * WEEK_MS + 5
    plan = plan_windows(start, end)
    assert [(w.start_ms, w.end_ms) for w in plan] == [
        (0, 5), (5, WEEK_MS + 5), (WEEK_MS + 5, 2 * WEEK_MS + 5), (2 * WEEK_MS + 5, 3 * WEEK_MS + 5)]


def test_subtract_leaves_only_what_is_not_covered() -> None:
    assert subtract(0, 100, [(10, 20), (15, 30), (50, 60), (90, 200)]) == [(0, 10), (30, 50), (60, 90)]
    assert subtract(0, 100, []) == [(0, 100)]
    assert subtract(0, 100, [(0, 100)]) == []
    assert subtract(10, 20, [(0, 5), (25, 30)]) == [(10, 20)]


def test_resume_skips_completed_windows_even_when_the_range_moved() -> None:
    first = plan_windows(0, 10 * WEEK_MS)
    done = [(w.start_ms, w.end_ms) for w in first[:4]]  # the four oldest were committed before the kill
    later = plan_windows(3_600_000, 10 * WEEK_MS + 3_600_000, done)  # rerun an hour later
    assert later[0] == Window(4 * WEEK_MS, 4 * WEEK_MS + 3_600_000)  # the oldest part left comes first
    assert later[-1] == Window(9 * WEEK_MS + 3_600_000, 10 * WEEK_MS + 3_600_000)  # the new hour last
    assert all(not (w.start_ms < e and s < w.end_ms) for w in later for s, e in done)


@given(st.integers(0, 10**12), st.integers(1, 60 * WEEK_MS),
       st.lists(st.tuples(st.integers(-WEEK_MS, 61 * WEEK_MS), st.integers(1, 3 * WEEK_MS)), max_size=12))
def test_plan_plus_covered_is_exactly_the_range(base: int, length: int, covered_raw: list[tuple[int, int]]) -> None:
    covered = [(base + s, base + s + n) for s, n in covered_raw]
    plan = plan_windows(base, base + length, covered)
    points = [(w.start_ms, w.end_ms) for w in plan]
    assert points == sorted(points)  # oldest first
    for (a_s, a_e), (b_s, _b_e) in zip(points, points[1:], strict=False):
        assert a_e <= b_s  # no overlap: no row is asked for twice
    for w in plan:
        assert w.end_ms - w.start_ms <= WEEK_MS
        assert base <= w.start_ms and w.end_ms <= base + length
        assert all(not (w.start_ms < e and s < w.end_ms) for s, e in covered)
    total = sum(w.end_ms - w.start_ms for w in plan)
    gap_total = sum(e - s for s, e in subtract(base, base + length, covered))
    assert total == gap_total
