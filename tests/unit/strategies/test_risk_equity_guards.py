"""Equity guards as LXAlgo and Momentum configure them: at the threshold, just short of it, the
resets at 00:00 UTC / Monday / the 1st, recovery, and the same after a restart from saved state."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from strategies.runtime.risk import (
    EventKind, GuardEvent, RefusalCode, RiskConfig, RiskGuards, GuardWindow,
)
from strategies.runtime.risk.presets import lxalgo_equity_guards, momentum_equity_guards

D = Decimal
MONDAY = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday; 2025-06-01 is the Sunday before
LXALGO = RiskConfig(equity_guards=lxalgo_equity_guards(), entry_block_h=4)
MOMENTUM = RiskConfig(equity_guards=momentum_equity_guards(), max_open_positions=3)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """June 2025, UTC."""
    return datetime(2025, 6, day, hour, minute, second, tzinfo=UTC)


def restarted(g: RiskGuards) -> RiskGuards:
    """A guard set rebuilt from its saved state, through JSON as the runtime stores it."""
    return RiskGuards.from_state(g.config, json.loads(json.dumps(g.to_state())))


def only(events: list[GuardEvent]) -> GuardEvent:
    assert len(events) == 1, events
    return events[0]


def entry_refusal(g: RiskGuards, now: datetime) -> RefusalCode | None:
    r = g.check_entry(now, "BTCUSDT", D(100), {})
    return None if r is None else r.code


def test_monday_is_a_monday() -> None:
    assert MONDAY.weekday() == 0 and at(2) == MONDAY


# ---- LXAlgo

@pytest.mark.parametrize("restart", [False, True])
def test_lxalgo_day_loss_closes_all_and_blocks_until_the_next_utc_day(restart: bool) -> None:
    g = RiskGuards(LXALGO)
    assert g.on_equity(at(2, 0, 0, 5), D(10000)) == []
    assert g.on_equity(at(2, 10), D("9800.01")) == []  # -1.9999 %: not yet
    assert entry_refusal(g, at(2, 10)) is None
    e = only(g.on_equity(at(2, 10, 5), D(9800)))  # exactly -2 %
    assert (e.kind, e.guard, e.flatten, e.until) == (EventKind.HALTED, "day_loss", True, at(3))
    assert "-2" not in e.reason and "down 2.00%" in e.reason
    if restart:
        g = restarted(g)
    assert entry_refusal(g, at(2, 23, 59, 59)) is RefusalCode.HALTED
    assert g.on_equity(at(2, 23, 59), D(10500)) == []  # recovering does not lift it
    if restart:
        g = restarted(g)
    e = only(g.on_equity(at(3), D(10500)))
    assert (e.kind, e.guard) == (EventKind.RESTORED, "day_loss")
    assert entry_refusal(g, at(3)) is None
    assert g.reference(GuardWindow.DAY) == D(10500) and g.reference(GuardWindow.WEEK) == D(10000)


def test_lxalgo_day_guard_lifts_at_midnight_even_without_an_equity_update() -> None:
    g = RiskGuards(LXALGO)
    g.on_equity(at(2), D(10000))
    g.on_equity(at(2, 12), D(9700))
    assert entry_refusal(g, at(2, 23, 59, 59)) is RefusalCode.HALTED
    assert entry_refusal(g, at(3)) is None
    e = only(g.on_time(at(3, 0, 1)))
    assert e.kind is EventKind.RESTORED


def _lxalgo_week_down_to(g: RiskGuards, final: Decimal, final_day: int = 4,
                         step: Decimal = D(150)) -> list[GuardEvent]:
    """Monday 10000, then ``step`` lower each day (never a day loss of 2 %), ending at ``final``."""
    events = g.on_equity(at(2), D(10000))
    equity = D(10000)
    for day in range(2, final_day):
        equity -= step
        events += g.on_equity(at(day, 23), equity)
    return events + g.on_equity(at(final_day, 10), final)


@pytest.mark.parametrize("restart", [False, True])
def test_lxalgo_week_minus_4_halves_size_until_half_the_worst_loss_is_recovered(restart: bool) -> None:
    g = RiskGuards(LXALGO)
    assert _lxalgo_week_down_to(g, D("9600.01")) == []  # Wednesday, -3.9999 % on the week
    assert g.size_factor(at(4, 10)) == 1
    e = only(g.on_equity(at(4, 11), D(9600)))  # exactly -4 %
    assert (e.kind, e.guard, e.size_factor, e.flatten, e.until) == (
        EventKind.SIZE_SCALED, "week_half_size", D("0.5"), False, None)
    assert g.size_factor(at(4, 11)) == D("0.5")
    assert entry_refusal(g, at(4, 11)) is None  # scaled, not blocked
    if restart:
        g = restarted(g)
    assert g.on_equity(at(4, 12), D(9550)) == []  # worst loss 450: back at 10000 - 225
    if restart:
        g = restarted(g)
    assert g.on_equity(at(4, 13), D("9774.99")) == []
    assert g.size_factor(at(4, 13)) == D("0.5")
    e = only(g.on_equity(at(4, 14), D(9775)))
    assert (e.kind, e.guard) == (EventKind.RESTORED, "week_half_size")
    assert g.size_factor(at(4, 14)) == 1
    # It can trip again the same week.
    assert only(g.on_equity(at(4, 15), D(9600))).kind is EventKind.SIZE_SCALED


def test_lxalgo_half_size_ends_when_the_week_rolls_over() -> None:
    g = RiskGuards(LXALGO)
    assert only(_lxalgo_week_down_to(g, D(9600), final_day=6, step=D(90))).guard == "week_half_size"
    assert g.size_factor(at(6, 10)) == D("0.5")
    assert g.on_equity(at(8, 23, 59, 59), D(9600)) == []  # Sunday night: still the same week
    e = only(g.on_equity(at(9), D(9600)))  # Monday 00:00
    assert (e.kind, e.guard) == (EventKind.RESTORED, "week_half_size")
    assert g.size_factor(at(9)) == 1 and g.reference(GuardWindow.WEEK) == D(9600)


@pytest.mark.parametrize("restart", [False, True])
def test_lxalgo_week_minus_6_closes_all_and_halts_until_next_monday(restart: bool) -> None:
    g = RiskGuards(LXALGO)
    events = _lxalgo_week_down_to(g, D("9400.01"), final_day=5)  # Thursday
    assert [e.guard for e in events] == ["week_half_size"]  # -4 % passed on the way
    e = only(g.on_equity(at(5, 11), D(9400)))  # exactly -6 %
    assert (e.kind, e.guard, e.flatten, e.until) == (EventKind.HALTED, "week_loss", True, at(9))
    if restart:
        g = restarted(g)
    for t in (at(6), at(7, 12), at(8, 23, 59, 59)):
        assert g.on_equity(t, D(9500)) == []  # day rollovers raise no new trip
        assert entry_refusal(g, t) is RefusalCode.HALTED
    if restart:
        g = restarted(g)
    events = g.on_equity(at(9), D(9500))
    assert {(e.kind, e.guard) for e in events} == {
        (EventKind.RESTORED, "week_loss"), (EventKind.RESTORED, "week_half_size")}
    assert entry_refusal(g, at(9)) is None and g.size_factor(at(9)) == 1


def test_lxalgo_week_reference_survives_a_restart_midweek() -> None:
    """The original reset its references on every restart; a restart on Wednesday at 9700 must
    still measure the week from Monday's 10000."""
    g = RiskGuards(LXALGO)
    g.on_equity(at(2), D(10000))
    g.on_equity(at(3, 23), D(9850))
    g = restarted(g)
    assert g.on_equity(at(4, 9), D(9700)) == []
    assert only(g.on_equity(at(4, 10), D(9600))).guard == "week_half_size"


def test_lxalgo_one_trade_per_symbol_per_4h_block() -> None:
    g = RiskGuards(LXALGO)
    g.on_equity(at(2), D(10000))
    assert g.check_entry(at(2, 1), "BTCUSDT", D(200), {}) is None
    g.record_entry(at(2, 1), "BTCUSDT")
    g = restarted(g)
    r = g.check_entry(at(2, 3, 59, 59), "BTCUSDT", D(200), {})
    assert r is not None and r.code is RefusalCode.ENTRY_BLOCK and "00:00" in r.text
    assert g.check_entry(at(2, 3, 59, 59), "ETHUSDT", D(200), {}) is None
    assert g.check_entry(at(2, 4), "BTCUSDT", D(200), {}) is None  # the next block
    g.record_entry(at(2, 23, 59), "BTCUSDT")
    assert g.check_entry(at(3), "BTCUSDT", D(200), {}) is None  # 20-24 block ended at midnight
    assert g.refusal_counts == {"entry_block": 1}


# ---- Momentum

@pytest.mark.parametrize("restart", [False, True])
def test_momentum_day_minus_3_blocks_entries_that_day(restart: bool) -> None:
    g = RiskGuards(MOMENTUM)
    g.on_equity(at(3), D(10000))
    assert g.on_equity(at(3, 8), D("9700.01")) == []
    e = only(g.on_equity(at(3, 8, 0, 1), D(9700)))
    assert (e.kind, e.guard, e.flatten, e.until) == (EventKind.TRIPPED, "day_loss", False, at(4))
    if restart:
        g = restarted(g)
    r = g.check_entry(at(3, 20), "BTCUSDT", D(100), {})
    assert r is not None and r.code is RefusalCode.ENTRIES_BLOCKED and "day_loss" in r.text
    assert only(g.on_equity(at(4), D(9700))).kind is EventKind.RESTORED
    assert entry_refusal(g, at(4)) is None


def _momentum_days(g: RiskGuards, equities: list[int], first_day: int) -> list[GuardEvent]:
    events = []
    for i, eq in enumerate(equities):
        events += g.on_equity(at(first_day + i), D(eq))
    return events


@pytest.mark.parametrize("restart", [False, True])
def test_momentum_week_minus_8_halves_size_for_the_rest_of_the_week(restart: bool) -> None:
    g = RiskGuards(MOMENTUM)
    assert _momentum_days(g, [10000, 9750, 9500, 9250], first_day=2) == []  # Mon..Thu, -2.6 %/day
    assert g.on_equity(at(5, 12), D("9200.01")) == []
    e = only(g.on_equity(at(5, 13), D(9200)))  # exactly -8 %
    assert (e.kind, e.guard, e.size_factor, e.until) == (EventKind.SIZE_SCALED, "week_half_size", D("0.5"), at(9))
    if restart:
        g = restarted(g)
    assert g.on_equity(at(6), D(10100)) == []  # back above the start: still half size this week
    assert g.size_factor(at(8, 23, 59, 59)) == D("0.5")
    assert only(g.on_equity(at(9), D(10100))).kind is EventKind.RESTORED
    assert g.size_factor(at(9)) == 1


@pytest.mark.parametrize("restart", [False, True])
def test_momentum_month_minus_15_halts_until_next_month(restart: bool) -> None:
    g = RiskGuards(MOMENTUM)
    # June 1 (Sunday) 10000, then 2.5 % of the start lower each day: no day guard, a week guard.
    events = _momentum_days(g, [10000, 9750, 9500, 9250, 9000, 8750], first_day=1)
    assert [e.guard for e in events] == ["week_half_size"]
    assert g.on_equity(at(6, 12), D("8500.01")) == []
    e = only(g.on_equity(at(6, 13), D(8500)))
    assert (e.kind, e.guard, e.flatten, e.until) == (
        EventKind.HALTED, "month_loss", False, datetime(2025, 7, 1, tzinfo=UTC))
    if restart:
        g = restarted(g)
    assert entry_refusal(g, datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)) is RefusalCode.HALTED
    events = g.on_equity(datetime(2025, 7, 1, tzinfo=UTC), D(8600))
    assert (EventKind.RESTORED, "month_loss") in {(e.kind, e.guard) for e in events}
    assert entry_refusal(g, datetime(2025, 7, 1, tzinfo=UTC)) is None
    assert g.reference(GuardWindow.MONTH) == D(8600)


def test_momentum_month_across_a_year_end() -> None:
    g = RiskGuards(MOMENTUM)
    g.on_equity(datetime(2025, 12, 1, tzinfo=UTC), D(10000))
    for day, eq in enumerate([9750, 9500, 9250, 9000, 8750, 8500], start=2):
        g.on_equity(datetime(2025, 12, day, tzinfo=UTC), D(eq))
    assert "month_loss" in g.tripped(datetime(2025, 12, 31, 23, tzinfo=UTC))
    assert "month_loss" not in g.tripped(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("restart", [False, True])
def test_momentum_drawdown_20_from_peak_halts_until_resumed(restart: bool) -> None:
    g = RiskGuards(MOMENTUM)
    # Up 200 a day to a peak of 12000 (June 11), then down 300 a day to 9900 (June 18): no day,
    # week or month guard on the way.
    ups = [10000 + 200 * i for i in range(11)]
    downs = [12000 - 300 * i for i in range(1, 8)]
    assert _momentum_days(g, ups + downs, first_day=1) == []
    assert g.reference(GuardWindow.PEAK) == D(12000)
    assert not [e for e in g.on_equity(at(18), D("9600.01")) if e.guard == "drawdown"]
    e = only([e for e in g.on_equity(at(18, 1), D(9600)) if e.guard == "drawdown"])  # exactly -20 %
    assert (e.kind, e.flatten, e.until) == (EventKind.HALTED, False, None)
    assert "equity peak 12000" in e.reason
    if restart:
        g = restarted(g)
    later = datetime(2025, 8, 15, tzinfo=UTC)  # new day, week and month: still halted
    g.on_equity(later, D(9700))
    assert entry_refusal(g, later) is RefusalCode.HALTED
    if restart:
        g = restarted(g)
    e = only(g.resume(later, "drawdown"))
    assert (e.kind, e.guard) == (EventKind.RESTORED, "drawdown")
    assert g.reference(GuardWindow.PEAK) == D(9700)  # the next drawdown is measured from here
    assert entry_refusal(g, later) is None
    assert g.on_equity(later + timedelta(hours=1), D(9700)) == []


def test_a_restart_at_every_update_changes_nothing() -> None:
    """A guard set saved and restored before every update gives the same events and state as one
    never restarted, over two months of a made-up equity path that trips every guard."""
    for config in (LXALGO, MOMENTUM):
        steady, flaky = RiskGuards(config), RiskGuards(config)
        t, equity = datetime(2025, 5, 26, tzinfo=UTC), D(10000)
        seen = set()
        for i in range(24 * 70):
            step = D((i * 7919) % 41 - 21) * D("0.0018")  # deterministic wander, fat left tail
            equity = (equity * (1 + step)).quantize(D("0.01"))
            flaky = restarted(flaky)
            a, b = steady.on_equity(t, equity), flaky.on_equity(t, equity)
            assert a == b
            seen |= {(e.guard, e.kind) for e in a}
            assert steady.check_entry(t, "BTCUSDT", D(10), {}) == flaky.check_entry(t, "BTCUSDT", D(10), {})
            assert steady.size_factor(t) == flaky.size_factor(t)
            if i % 50 == 0 and "drawdown" in steady.tripped(t):
                assert steady.resume(t, "drawdown") == flaky.resume(t, "drawdown")
            t += timedelta(hours=1)
        assert steady.to_state() == flaky.to_state()
        tripped_guards = {g for g, k in seen if k is not EventKind.RESTORED}
        assert tripped_guards == {g.name for g in config.equity_guards}, seen
