"""Position limits, cooldowns, daily counters, kill switch, refusal counts; bad config, bad input
and bad state each get one clear error."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from strategies.runtime.risk import (
    KILL_SWITCH, Action, EquityGuard, EventKind, RefusalCode, RiskConfig, RiskGuards, Until, GuardWindow,
)

D = Decimal
T0 = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)


def code(g: RiskGuards, symbol: str = "BTCUSDT", notional: str = "100",
         positions: dict[str, Decimal] | None = None, now: datetime = T0) -> RefusalCode | None:
    r = g.check_entry(now, symbol, D(notional), positions or {})
    return None if r is None else r.code


def test_max_open_positions_and_one_per_symbol() -> None:
    g = RiskGuards(RiskConfig(max_open_positions=3, one_position_per_symbol=True))
    two = {"BTCUSDT": D(200), "ETHUSDT": D(-150)}
    assert code(g, "SOLUSDT", positions=two) is None
    three = {**two, "SOLUSDT": D(100)}
    assert code(g, "XRPUSDT", positions=three) is RefusalCode.MAX_OPEN_POSITIONS
    assert code(g, "XRPUSDT", positions={**three, "SOLUSDT": D(0)}) is None  # flat does not count
    assert code(g, "ETHUSDT", positions=two) is RefusalCode.SYMBOL_HAS_POSITION  # a short counts
    adding = RiskGuards(RiskConfig(max_open_positions=2, one_position_per_symbol=False))
    assert code(adding, "ETHUSDT", positions=two) is None  # adding to a held symbol is no new slot
    assert g.refusal_counts == {"max_open_positions": 1, "symbol_has_position": 1}


def test_notional_limits_per_order_and_per_symbol() -> None:
    g = RiskGuards(RiskConfig(one_position_per_symbol=False, max_order_notional_usdt=D(200),
                              max_symbol_notional_usdt=D(300)))
    assert code(g, notional="200") is None
    assert code(g, notional="200.01") is RefusalCode.MAX_ORDER_NOTIONAL
    assert code(g, notional="100", positions={"BTCUSDT": D(-200)}) is None  # 300 exactly
    r = g.check_entry(T0, "BTCUSDT", D("100.01"), {"BTCUSDT": D(200)})
    assert r is not None and r.code is RefusalCode.MAX_SYMBOL_NOTIONAL and "300.01" in r.text


def test_gross_leverage_against_the_last_equity_and_the_leverage_setting_cap() -> None:
    g = RiskGuards(RiskConfig(max_gross_leverage=D(2), max_leverage=D(10)))
    assert code(g) is RefusalCode.MAX_GROSS_LEVERAGE  # no equity known yet
    g.on_equity(T0, D(1000))
    assert code(g, "SOLUSDT", "1000", {"BTCUSDT": D(600), "ETHUSDT": D("-400.01")}) is RefusalCode.MAX_GROSS_LEVERAGE
    assert code(g, "SOLUSDT", "1000", {"BTCUSDT": D(600), "ETHUSDT": D(-400)}) is None  # 2x exactly
    assert g.check_leverage(D(10)) is None
    r = g.check_leverage(D("10.5"))
    assert r is not None and r.code is RefusalCode.MAX_LEVERAGE
    assert g.refusal_counts == {"max_gross_leverage": 2, "max_leverage": 1}


def test_symbol_cooldown_after_an_entry() -> None:
    g = RiskGuards(RiskConfig(symbol_cooldown_s=3600))
    g.record_entry(T0, "BTCUSDT")
    assert code(g, now=T0 + timedelta(minutes=59, seconds=59)) is RefusalCode.SYMBOL_COOLDOWN
    assert code(g, "ETHUSDT", now=T0 + timedelta(minutes=1)) is None
    assert code(g, now=T0 + timedelta(hours=1)) is None


@pytest.mark.parametrize(("block_h", "last", "now", "refused"), [
    (4, (0, 0), (3, 59), True), (4, (3, 59), (4, 0), False), (4, (20, 0), (23, 59), True),
    (8, (7, 0), (8, 0), False), (24, (0, 0), (23, 59), True), (1, (9, 59), (10, 0), False),
])
def test_entry_blocks_are_aligned_on_utc_midnight(block_h: int, last: tuple[int, int],
                                                 now: tuple[int, int], refused: bool) -> None:
    g = RiskGuards(RiskConfig(entry_block_h=block_h))
    day = datetime(2025, 6, 2, tzinfo=UTC)
    g.record_entry(day.replace(hour=last[0], minute=last[1]), "BTCUSDT")
    got = code(g, now=day.replace(hour=now[0], minute=now[1]))
    assert got is (RefusalCode.ENTRY_BLOCK if refused else None)


def test_daily_counters_and_the_daily_entry_limit_reset_at_utc_midnight() -> None:
    g = RiskGuards(RiskConfig(max_entries_per_day=2, one_position_per_symbol=False))
    late = datetime(2025, 6, 2, 23, 59, 59, tzinfo=UTC)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert code(g, symbol, now=late) is None
        g.record_entry(late, symbol)
    assert code(g, "SOLUSDT", now=late) is RefusalCode.DAILY_ENTRY_LIMIT
    assert g.count(late, "entries") == 2
    assert [g.increment(late, "crosses") for _ in range(3)] == [1, 2, 3]
    g = RiskGuards.from_state(g.config, json.loads(json.dumps(g.to_state())))
    assert g.count(late, "crosses") == 3
    midnight = late + timedelta(seconds=1)
    assert g.count(midnight, "crosses") == 0 and g.count(midnight, "entries") == 0
    assert code(g, "SOLUSDT", now=midnight) is None


def test_kill_switch_flattens_and_halts_until_released() -> None:
    g = RiskGuards(RiskConfig())
    e, = g.kill(T0, "operator /kill")
    assert (e.kind, e.guard, e.flatten) == (EventKind.HALTED, KILL_SWITCH, True)
    assert g.kill(T0, "again") == []  # already on: nothing new to do
    g = RiskGuards.from_state(g.config, json.loads(json.dumps(g.to_state())))
    assert g.killed
    r = g.check_entry(T0 + timedelta(days=40), "BTCUSDT", D(1), {})
    assert r is not None and r.code is RefusalCode.KILL_SWITCH and "operator /kill" in r.text
    e, = g.release_kill(T0)
    assert e.kind is EventKind.RESTORED and not g.killed
    assert code(g) is None and g.release_kill(T0) == []


def test_scale_factors_do_not_compound_and_halts_come_before_blocks() -> None:
    guards = (
        EquityGuard("a", GuardWindow.DAY, D(1), Action.SCALE_SIZE, Until.NEXT_DAY, size_factor=D("0.5")),
        EquityGuard("b", GuardWindow.DAY, D(2), Action.SCALE_SIZE, Until.NEXT_DAY, size_factor=D("0.25")),
        EquityGuard("c", GuardWindow.DAY, D(3), Action.BLOCK_ENTRIES, Until.NEXT_DAY),
        EquityGuard("d", GuardWindow.DAY, D(4), Action.HALT, Until.MANUAL),
    )
    g = RiskGuards(RiskConfig(equity_guards=guards))
    g.on_equity(T0, D(100))
    assert [e.guard for e in g.on_equity(T0, D("97.5"))] == ["a", "b"]
    assert g.size_factor(T0) == D("0.25")
    g.on_equity(T0, D(97))
    assert code(g) is RefusalCode.ENTRIES_BLOCKED
    e, = g.on_equity(T0, D(96))
    assert (e.kind, e.until) == (EventKind.HALTED, None)
    assert code(g) is RefusalCode.HALTED
    assert sorted(g.tripped(T0)) == ["a", "b", "c", "d"]
    assert g.resume(T0, "c") != [] and g.resume(T0, "c") == []
    with pytest.raises(ValueError, match="no equity guard named 'zz'"):
        g.resume(T0, "zz")


def test_a_non_positive_reference_trips_nothing() -> None:
    g = RiskGuards(RiskConfig(equity_guards=(
        EquityGuard("day", GuardWindow.DAY, D(2), Action.HALT, Until.NEXT_DAY),)))
    g.on_equity(T0, D(0))
    assert g.on_equity(T0, D(-5)) == []


@pytest.mark.parametrize("now", [datetime(2025, 6, 2, 9, 30), datetime(2025, 6, 2, 9, 30, tzinfo=timezone(timedelta(hours=2)))])
def test_non_utc_times_are_rejected(now: datetime) -> None:
    g = RiskGuards(RiskConfig())
    with pytest.raises(ValueError, match="UTC datetime"):
        g.on_equity(now, D(1))
    with pytest.raises(ValueError, match="UTC datetime"):
        g.check_entry(now, "BTCUSDT", D(1), {})


def test_bad_amounts_and_backwards_time_are_rejected_and_change_nothing() -> None:
    g = RiskGuards(RiskConfig(max_open_positions=1))
    g.on_equity(T0, D(1000))
    before = g.to_state()
    for bad in (1000.0, D("NaN"), D("Infinity"), "1000"):
        with pytest.raises(ValueError, match="finite Decimal"):
            g.on_equity(T0, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time went backwards"):
        g.on_equity(T0 - timedelta(seconds=1), D(1000))
    with pytest.raises(ValueError, match="notional_usdt must be > 0"):
        g.check_entry(T0, "BTCUSDT", D(0), {})
    with pytest.raises(ValueError, match="finite Decimal"):
        g.check_entry(T0, "BTCUSDT", 5.0, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"open_positions\[ETHUSDT\]"):
        g.check_entry(T0, "BTCUSDT", D(5), {"ETHUSDT": 5.0})  # type: ignore[dict-item]
    assert g.to_state() == before


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_open_positions": 0}, "max_open_positions"),
    ({"max_entries_per_day": True}, "max_entries_per_day"),
    ({"entry_block_h": 5}, "divide 24"),
    ({"max_order_notional_usdt": 200}, "finite Decimal"),
    ({"max_leverage": D(0)}, "max_leverage must be > 0"),
    ({"equity_guards": (EquityGuard("x", GuardWindow.DAY, D(1), Action.HALT, Until.NEXT_DAY),) * 2}, "unique"),
])
def test_bad_config_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RiskConfig(**kwargs)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (("x", GuardWindow.DAY, D(0), Action.HALT, Until.NEXT_DAY), {}, "loss_pct must be > 0"),
    (("x", GuardWindow.DAY, D(101), Action.HALT, Until.NEXT_DAY), {}, "loss_pct must be <= 100"),
    (("x", GuardWindow.DAY, D(2), Action.SCALE_SIZE, Until.NEXT_DAY), {"size_factor": D("1.5")}, "size_factor"),
    (("x", GuardWindow.DAY, D(2), Action.HALT, Until.RECOVERY), {}, "scale_size or block_entries"),
    (("x", GuardWindow.PEAK, D(2), Action.SCALE_SIZE, Until.RECOVERY), {"size_factor": D("0.5")}, "day, week or month"),
    (("bad name", GuardWindow.DAY, D(2), Action.HALT, Until.NEXT_DAY), {}, "guard name"),
    (("x", "fortnight", D(2), Action.HALT, Until.NEXT_DAY), {}, "fortnight"),
])
def test_bad_equity_guard_is_rejected(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EquityGuard(*args, **kwargs)


def test_equity_guard_takes_plain_strings_from_configuration_files() -> None:
    guard = EquityGuard("dd", "peak", D(20), "halt", "manual")  # type: ignore[arg-type]
    assert (guard.window, guard.action, guard.until) == (GuardWindow.PEAK, Action.HALT, Until.MANUAL)
    g = RiskGuards(RiskConfig(equity_guards=(guard,)))
    g.on_equity(T0, D(100))
    e, = g.on_equity(T0, D(80))
    assert e.kind is EventKind.HALTED and "equity peak" in e.reason


def _tripped_state() -> tuple[RiskConfig, dict]:
    cfg = RiskConfig(equity_guards=(EquityGuard("day", GuardWindow.DAY, D(2), Action.HALT, Until.NEXT_DAY),))
    g = RiskGuards(cfg)
    g.on_equity(T0, D(100))
    g.on_equity(T0, D(90))
    g.record_entry(T0, "BTCUSDT")
    g.check_entry(T0, "BTCUSDT", D(1), {})
    return cfg, json.loads(json.dumps(g.to_state()))


def test_state_round_trips_through_json() -> None:
    cfg, state = _tripped_state()
    g = RiskGuards.from_state(cfg, state)
    assert g.to_state() == state
    assert g.tripped(T0) == ["day"] and g.refusal_counts == {"halted": 1}


@pytest.mark.parametrize(("edit", "match"), [
    (lambda s: s.update(version=2), "state version 2"),
    (lambda s: s.pop("windows"), "malformed risk state"),
    (lambda s: s["windows"]["day"].update(start_equity="abc"), r"windows\.day\.start_equity is not a decimal"),
    (lambda s: s["windows"]["day"].update(start_equity=None), r"windows\.day\.start_equity is missing"),
    (lambda s: s.update(equity=1.5), "equity must be a decimal string"),
    (lambda s: s.update(last_update="2025-06-02T09:30:00"), "last_update must be a timezone-aware UTC"),
    (lambda s: s.update(last_update="yesterday"), "last_update is not an ISO time"),
    (lambda s: s["tripped"].update(gone={"since": T0.isoformat(), "until": None}), "'gone' is not in the configuration"),
    (lambda s: s["refusals"].update(halted=-1), r"refusals\.halted must be a count"),
    (lambda s: s["refusals"].update(nonsense=1), "nonsense"),
    (lambda s: s["windows"].update(peak=s["windows"]["day"]), "peak has no window"),
])
def test_malformed_state_is_one_clear_error(edit, match: str) -> None:
    cfg, state = _tripped_state()
    edit(state)
    with pytest.raises(ValueError, match=match):
        RiskGuards.from_state(cfg, state)
