"""The liveness record's judgement (pure): when a bot counts as no longer deciding."""
from __future__ import annotations

import pytest

from strategies.runtime.live.liveness import Liveness, LivenessWriter, limit_ms, verdict

FIVE_MIN = 300_000
LIMIT = limit_ms(FIVE_MIN, 60)  # 11 minutes


def rec(**kw: int) -> Liveness:
    base = dict(boot_ms=0, started_ms=1_000, decided_ms=1_000, bars=0, interval_ms=FIVE_MIN, written_ms=1_000)
    return Liveness(**{**base, **kw})


def test_the_limit_is_two_intervals_and_the_slack() -> None:
    assert LIMIT == 660_000
    assert limit_ms(60_000, 0) == 120_000


def test_a_decision_just_within_the_limit_is_healthy_and_just_after_is_not() -> None:
    r = rec(decided_ms=10_000, bars=5, written_ms=10_000 + LIMIT)
    assert verdict(r, 10_000 + LIMIT, LIMIT) is None
    problem = verdict(r, 10_000 + LIMIT + 1, LIMIT)
    assert problem is not None and "no candle decided for 660 s" in problem and "5 handled" in problem


def test_before_the_start_the_age_counts_from_the_boot() -> None:
    r = rec(boot_ms=0, started_ms=0, decided_ms=0, written_ms=LIMIT)
    assert verdict(r, LIMIT, LIMIT) is None
    problem = verdict(r, LIMIT + 1, LIMIT)
    assert problem is not None and "not started deciding" in problem


def test_started_without_a_candle_counts_from_the_start() -> None:
    r = rec(started_ms=50_000, decided_ms=50_000, bars=0, written_ms=50_000 + LIMIT + 1)
    problem = verdict(r, 50_000 + LIMIT + 1, LIMIT)
    assert problem is not None and "since the start" in problem


def test_a_record_no_longer_refreshed_fails() -> None:
    r = rec(decided_ms=LIMIT, bars=3, written_ms=0)
    problem = verdict(r, LIMIT + 1, LIMIT)
    assert problem is not None and "not refreshed" in problem


def test_parse_round_trip_and_bad_fields() -> None:
    r = rec(bars=7)
    assert Liveness.parse(r.fields()) == r
    with pytest.raises(ValueError, match="'bars' is missing"):
        Liveness.parse({k: v for k, v in r.fields().items() if k != "bars"})
    with pytest.raises(ValueError, match="'decided_ms' is not a whole number"):
        Liveness.parse({**r.fields(), "decided_ms": "soon"})


def test_the_writer_moves_the_decision_time_only_when_a_candle_was_handled() -> None:
    w = LivenessWriter(redis=None, bot_id="shortseller_001", interval_ms=FIVE_MIN)  # type: ignore[arg-type]
    boot = w.rec.boot_ms
    r = w.observe(started=False, bars=0, t=boot + 10)
    assert (r.started_ms, r.decided_ms) == (0, 0)
    r = w.observe(started=True, bars=0, t=boot + 20)
    assert (r.started_ms, r.decided_ms) == (boot + 20, boot + 20)
    r = w.observe(started=True, bars=0, t=boot + 30)
    assert r.decided_ms == boot + 20 and r.written_ms == boot + 30
    r = w.observe(started=True, bars=2, t=boot + 40)
    assert (r.decided_ms, r.bars) == (boot + 40, 2)
    r = w.observe(started=True, bars=2, t=boot + 50)
    assert r.decided_ms == boot + 40 and r.started_ms == boot + 20
