"""ShortSeller's rules on hand-made values at each boundary of strategies.md."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from strategies.shortseller.config import LadderStep, SymbolRules, default_config
from strategies.shortseller.signals import (
    BarValues,
    DailyCrosses,
    ExitLevels,
    ExitReason,
    Filters,
    SignalRefusal,
    Refused,
    Regime,
    bot_side_exit,
    count_crosses,
    cross_event,
    crossed_emas,
    crosses_today,
    entry_allowed,
    entry_qty,
    exit_levels,
    in_cooldown,
    ladder_due,
    profit_pct,
    regime,
)

T0 = datetime(2025, 5, 6, 10, 0, tzinfo=timezone.utc)
CFG = default_config()
BTC = CFG.for_symbol("BTCUSDT")
ETH = CFG.for_symbol("ETHUSDT")
SOL = CFG.for_symbol("SOLUSDT")
BTC_FILTERS = Filters(tick_size=D("0.10"), qty_step=D("0.001"), min_qty=D("0.001"))


def rules(base: SymbolRules, **changes: object) -> SymbolRules:
    """A validated copy of base with changes."""
    return SymbolRules(**{**base.model_dump(), **changes})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- regime ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("close", "fast", "slow", "expected"), [
    ("99", "100", "101", Regime.ACTIVE),
    ("99", "101", "100", Regime.ACTIVE),  # EMA order not required by default
    ("100", "100", "101", Regime.INACTIVE),  # exactly on EMA fast: not below it
    ("101", "100", "101", Regime.INACTIVE),  # exactly on EMA slow
    ("100.5", "100", "101", Regime.INACTIVE),  # between the EMAs
    ("102", "100", "101", Regime.INACTIVE),  # above both
    ("99.99", "100", "100", Regime.ACTIVE),
])
def test_regime_is_active_only_below_both_emas(close: str, fast: str, slow: str, expected: Regime) -> None:
    assert regime(D(close), D(fast), D(slow)) is expected


def test_regime_with_the_ema_order_option_also_needs_ema_fast_below_ema_slow() -> None:
    assert regime(D(99), D(100), D(101), require_ema_order=True) is Regime.ACTIVE
    assert regime(D(99), D(101), D(100), require_ema_order=True) is Regime.INACTIVE
    assert regime(D(99), D(100), D(100), require_ema_order=True) is Regime.INACTIVE  # equal: not below


# --- cross event -------------------------------------------------------------------------------

@pytest.mark.parametrize(("prev_close", "close", "prev_ema", "ema", "crossed"), [
    ("101", "99", "100", "100", True),
    ("100", "99", "100", "100", True),  # previous close exactly on the EMA counts as "at or above"
    ("101", "100", "100", "100", False),  # this close exactly on the EMA is not below it
    ("99", "98", "100", "100", False),  # already below
    ("101", "102", "100", "100", False),
    # each close against its own bar's EMA: the previous close was above the previous EMA, the EMA
    # then rose above it, this close is below the new EMA: a cross (against this EMA it would not be)
    ("100.5", "100.2", "100.4", "100.6", True),
    # the previous close was below the previous EMA, though above this bar's EMA: no cross
    ("100.5", "100.2", "100.6", "100.4", False),
])
def test_cross_event(prev_close: str, close: str, prev_ema: str, ema: str, crossed: bool) -> None:
    assert cross_event(D(prev_close), D(close), D(prev_ema), D(ema)) is crossed


def test_crossed_emas_names_each_ema_crossed_and_needs_a_previous_bar() -> None:
    prev = BarValues(close=D(105), ema_fast=D(100), ema_slow=D(104))
    assert crossed_emas(prev, BarValues(close=D(99), ema_fast=D(100), ema_slow=D(104))) == ("ema_fast", "ema_slow")
    assert crossed_emas(prev, BarValues(close=D(102), ema_fast=D(100), ema_slow=D(104))) == ("ema_slow",)
    assert crossed_emas(prev, BarValues(close=D(104), ema_fast=D(100), ema_slow=D(104))) == ()
    assert crossed_emas(None, BarValues(close=D(99), ema_fast=D(100), ema_slow=D(104))) == ()


# --- daily cross count ---------------------------------------------------------------------------

def test_cross_count_resets_at_midnight_utc() -> None:
    c = count_crosses(None, datetime(2025, 5, 6, 23, 50, tzinfo=timezone.utc), 2)
    assert c == DailyCrosses(day=date(2025, 5, 6), count=2)
    c = count_crosses(c, datetime(2025, 5, 6, 23, 55, tzinfo=timezone.utc), 1)
    assert c.count == 3
    # the 23:55 bar closes at 00:00: decided on the new day, it counts for the new day
    midnight = datetime(2025, 5, 7, 0, 0, tzinfo=timezone.utc)
    assert crosses_today(c, midnight) == 0
    c = count_crosses(c, midnight, 1)
    assert c == DailyCrosses(day=date(2025, 5, 7), count=1)
    assert count_crosses(c, midnight + minutes(5), 0) == c


def test_cross_count_days_are_utc_days_whatever_the_timezone_of_now() -> None:
    c = DailyCrosses(day=date(2025, 5, 6), count=5)
    east = timezone(timedelta(hours=3))
    assert crosses_today(c, datetime(2025, 5, 7, 2, 0, tzinfo=east)) == 5  # 23:00 UTC on the 6th
    assert crosses_today(c, datetime(2025, 5, 7, 3, 0, tzinfo=east)) == 0  # 00:00 UTC on the 7th


# --- entry -----------------------------------------------------------------------------------------

def allowed(**changes: object) -> Refused | None:
    args: dict[str, object] = dict(crossed=True, regime=Regime.ACTIVE, flat=True, last_entry_at=None,
                                   now=T0, crosses_before=0, rules=BTC)
    args.update(changes)
    return entry_allowed(**args)  # type: ignore[arg-type]


def test_entry_needs_every_condition() -> None:
    assert allowed() is None
    assert allowed(crossed=False).reason is SignalRefusal.NO_CROSS
    assert allowed(regime=Regime.INACTIVE).reason is SignalRefusal.REGIME_INACTIVE
    assert allowed(flat=False).reason is SignalRefusal.NOT_FLAT
    assert allowed(last_entry_at=T0 - minutes(30)).reason is SignalRefusal.COOLDOWN
    assert allowed(crosses_before=12).reason is SignalRefusal.CROSS_CAP


def test_entry_refusals_come_in_the_order_of_the_table() -> None:
    everything_wrong = dict(crossed=False, regime=Regime.INACTIVE, flat=False, last_entry_at=T0, crosses_before=99)
    assert allowed(**everything_wrong).reason is SignalRefusal.NO_CROSS
    assert allowed(**{**everything_wrong, "crossed": True}).reason is SignalRefusal.REGIME_INACTIVE
    assert allowed(**{**everything_wrong, "crossed": True, "regime": Regime.ACTIVE}).reason is SignalRefusal.NOT_FLAT
    assert allowed(last_entry_at=T0, crosses_before=99).reason is SignalRefusal.COOLDOWN


def test_the_12th_cross_of_a_day_may_enter_and_the_13th_may_not() -> None:
    assert allowed(crosses_before=11) is None
    refused = allowed(crosses_before=12)
    assert refused == Refused(SignalRefusal.CROSS_CAP, "12 crosses earlier today, cap 12")
    assert allowed(crosses_before=3, rules=rules(BTC, daily_cross_cap=3)).reason is SignalRefusal.CROSS_CAP


def test_the_cap_on_hand_made_bars_over_a_day() -> None:
    """Bars alternating above and below a flat EMA: every second bar is a cross; count and decide
    each bar as the strategy does (count before this bar decides, then this bar's crosses are added)."""
    ema_fast, ema_slow = D(100), D(200)  # close far below EMA slow: only EMA fast is ever crossed
    day_start = datetime(2025, 5, 6, 0, 0, tzinfo=timezone.utc)
    prev: BarValues | None = None
    counter: DailyCrosses | None = DailyCrosses(day=date(2025, 5, 5), count=11)  # yesterday's: reset
    decisions = []
    for i in range(1, 40):
        now = day_start + minutes(5 * i)
        bar = BarValues(close=D(99) if i % 2 == 0 else D(101), ema_fast=ema_fast, ema_slow=ema_slow)
        crossed = crossed_emas(prev, bar)
        if crossed:
            decision = allowed(crossed=True, regime=regime(bar.close, ema_fast, ema_slow), now=now,
                               crosses_before=crosses_today(counter, now))
            decisions.append(decision)
        counter = count_crosses(counter, now, len(crossed))
        prev = bar
    assert len(decisions) == 19
    assert decisions[:12] == [None] * 12  # crosses 1..12 may enter
    assert all(d is not None and d.reason is SignalRefusal.CROSS_CAP for d in decisions[12:])  # 13th on
    assert counter is not None and counter.count == 19


@pytest.mark.parametrize(("since_entry", "cooling"), [
    (minutes(0), True), (minutes(59), True), (minutes(59.99), True),
    (minutes(60), False), (minutes(61), False), (timedelta(days=3), False),
])
def test_cooldown_is_one_hour_from_each_entry(since_entry: timedelta, cooling: bool) -> None:
    assert in_cooldown(T0 - since_entry, T0, 3600) is cooling
    assert (allowed(last_entry_at=T0 - since_entry) is not None) is cooling
    assert in_cooldown(None, T0, 3600) is False


def test_cooldown_refusal_says_how_long_is_left() -> None:
    assert allowed(last_entry_at=T0 - minutes(59)) == Refused(SignalRefusal.COOLDOWN, "cooldown: 60 s left of 3600 s")


# --- exit levels -------------------------------------------------------------------------------

def test_exit_levels_of_a_btc_short() -> None:
    assert exit_levels(D("100000.0"), BTC, D("0.10")) == ExitLevels(
        stop_loss=D("101000.0"), take_profit=D("97000.0"), trail_distance=D("1000.0"), trail_activation=D("98000.0"))


def test_exit_levels_are_rounded_to_the_tick_toward_the_entry() -> None:
    # ETH at 2501.37: stop 2538.89055 -> 2538.89 (down), target 2388.80835 -> 2388.81 (up),
    # trail 50.0274 -> 50.02 (down), activation 2451.3426 -> 2451.35 (up)
    levels = exit_levels(D("2501.37"), ETH, D("0.01"))
    assert levels == ExitLevels(stop_loss=D("2538.89"), take_profit=D("2388.81"), trail_distance=D("50.02"),
                                trail_activation=D("2451.35"))
    assert profit_pct(D("2501.37"), levels.stop_loss) > -ETH.stop_loss_pct  # the loss never exceeds the stop
    # SOL at 143.21: 145.35815 -> 145.35; 134.6174 -> 134.62; 2.8642 -> 2.86; 138.9137 -> 138.92
    assert exit_levels(D("143.21"), SOL, D("0.010")) == ExitLevels(
        stop_loss=D("145.35"), take_profit=D("134.62"), trail_distance=D("2.86"), trail_activation=D("138.92"))


def test_exit_levels_stay_a_tick_away_from_the_entry() -> None:
    tight = rules(BTC, stop_loss_pct=D("0.01"), take_profit_pct=D("0.01"), trail_distance_pct=D("0.01"),
                  trail_activation_pct=D("0.01"))
    assert exit_levels(D("10.00"), tight, D("0.01")) == ExitLevels(
        stop_loss=D("10.01"), take_profit=D("9.99"), trail_distance=D("0.01"), trail_activation=D("9.99"))
    # an entry off the tick (an average of fills) still gets levels on the tick, strictly around it
    levels = exit_levels(D("10.005"), tight, D("0.01"))
    assert (levels.stop_loss, levels.take_profit) == (D("10.01"), D("10.00"))


def test_no_activation_price_when_the_trail_starts_at_the_entry() -> None:
    assert exit_levels(D("100000.0"), rules(BTC, trail_activation_pct=D(0)), D("0.10")).trail_activation is None


# --- bot-side exits ------------------------------------------------------------------------------

def exit_at(close: str, held: timedelta, reg: Regime = Regime.ACTIVE, r: SymbolRules = BTC) -> ExitReason | None:
    return bot_side_exit(entry_price=D(100000), close=D(close), entry_time=T0, now=T0 + held, regime=reg, rules=r)


def test_take_profit_and_stop_loss_at_exactly_their_levels() -> None:
    assert exit_at("97000", minutes(5)) is ExitReason.TAKE_PROFIT  # exactly 3.0 %
    assert exit_at("97000.1", minutes(5)) is None
    assert exit_at("101000", minutes(5)) is ExitReason.STOP_LOSS  # exactly 1.0 %
    assert exit_at("100999.9", minutes(5)) is None


@pytest.mark.parametrize(("held", "reason"), [
    (timedelta(hours=23, minutes=59), None),
    (timedelta(hours=24), None),  # "held > 24 h": 24 h 00 stays
    (timedelta(hours=24, minutes=1), ExitReason.MAX_HOLD),
])
def test_holding_limit(held: timedelta, reason: ExitReason | None) -> None:
    assert exit_at("100000", held) is reason


def test_bot_side_exits_in_priority_order() -> None:
    late = timedelta(hours=25)
    assert exit_at("97000", late, Regime.INACTIVE) is ExitReason.TAKE_PROFIT
    assert exit_at("101000", late, Regime.INACTIVE) is ExitReason.STOP_LOSS
    assert exit_at("100500", late, Regime.INACTIVE) is ExitReason.MAX_HOLD
    assert exit_at("100500", timedelta(hours=2), Regime.INACTIVE) is ExitReason.REGIME


@pytest.mark.parametrize(("held", "reason"), [
    (minutes(5), None), (minutes(59), None), (minutes(60), ExitReason.REGIME), (minutes(61), ExitReason.REGIME),
])
def test_no_regime_exit_within_the_first_hour(held: timedelta, reason: ExitReason | None) -> None:
    assert exit_at("100200", held, Regime.INACTIVE) is reason
    assert exit_at("100200", held, Regime.ACTIVE) is None


def test_the_regime_turning_inside_the_first_hour() -> None:
    """Entered at T0; the close rises over EMA fast at 20 min and stays there: the first bar that
    may exit on the regime is the one closing 60 min after the entry. A regime that turns back to
    ACTIVE before the hour leaves the trade open."""
    ema_fast, ema_slow = D(100100), D(100400)
    path = {m: D(99900) if m < 20 else D(100200) for m in range(5, 125, 5)}
    exits = {m: bot_side_exit(entry_price=D(100000), close=c, entry_time=T0, now=T0 + minutes(m),
                              regime=regime(c, ema_fast, ema_slow), rules=BTC) for m, c in path.items()}
    first = min(m for m, e in exits.items() if e is not None)
    assert (first, exits[first]) == (60, ExitReason.REGIME)

    back = {m: D(100200) if 20 <= m < 50 else D(99900) for m in range(5, 125, 5)}
    assert all(bot_side_exit(entry_price=D(100000), close=c, entry_time=T0, now=T0 + minutes(m),
                             regime=regime(c, ema_fast, ema_slow), rules=BTC) is None for m, c in back.items())


def test_hold_and_grace_follow_the_config() -> None:
    r = rules(BTC, max_hold_s=3600, regime_exit_grace_s=0)
    assert exit_at("100200", minutes(0), Regime.INACTIVE, r) is ExitReason.REGIME
    assert exit_at("100000", minutes(61), Regime.ACTIVE, r) is ExitReason.MAX_HOLD


# --- sizing ------------------------------------------------------------------------------------------

def test_size_is_seventy_percent_of_the_wallet_floored_to_the_step() -> None:
    assert entry_qty(D(1000), D(100000), BTC, BTC_FILTERS) == D("0.007")  # 700 USDT
    assert entry_qty(D(1000), D("81804.9"), BTC, BTC_FILTERS) == D("0.008")  # 0.008557 floored
    eth = Filters(tick_size=D("0.01"), qty_step=D("0.01"), min_qty=D("0.01"))
    assert entry_qty(D("2500.50"), D("2501.37"), ETH, eth) == D("0.69")  # 1750.35 / 2501.37 = 0.6997


def test_size_below_the_minimums_is_refused_not_raised() -> None:
    assert entry_qty(D(10), D(100000), BTC, BTC_FILTERS) == Refused(
        SignalRefusal.SIZE_TOO_SMALL, "0.000 at 100000 is below the minimum (0.001 / 5 USDT)")
    # 5.6 USDT of notional floors to 0.001 at 4000 = 4 USDT < the 5 USDT minimum notional
    small = Filters(tick_size=D("0.01"), qty_step=D("0.001"), min_qty=D("0.001"))
    refused = entry_qty(D(8), D(4000), BTC, small)
    assert isinstance(refused, Refused) and refused.reason is SignalRefusal.SIZE_TOO_SMALL
    assert entry_qty(D(0), D(4000), BTC, small) == Refused(
        SignalRefusal.SIZE_TOO_SMALL, "0 at 4000 is below the minimum (0.001 / 5 USDT)")


def test_size_is_capped_at_the_market_order_maximum() -> None:
    capped = Filters(tick_size=D("0.10"), qty_step=D("0.001"), min_qty=D("0.001"), max_market_qty=D("119.000"))
    assert entry_qty(D(10**8), D(100000), BTC, capped) == D("119.000")
    assert entry_qty(D(10**8), D(100000), rules(BTC, wallet_fraction_pct=D(1), leverage=D(1)), BTC_FILTERS) == D(10)


# --- take-profit ladder -------------------------------------------------------------------------------

LADDER = (LadderStep(profit_pct=D("1.5"), close_pct=D(50)), LadderStep(profit_pct=D("2.5"), close_pct=D(25)))
ONE = Filters(tick_size=D("0.1"), qty_step=D("0.01"), min_qty=D("0.01"))


def test_ladder_closes_each_step_once_when_reached() -> None:
    assert ladder_due(LADDER, 0, D(100), D("98.6"), D(1), D(1), ONE) == ladder_due(LADDER, 0, D(100), D(99), D(1), D(1), ONE)
    assert ladder_due(LADDER, 0, D(100), D("98.6"), D(1), D(1), ONE).close_qty == 0  # 1.4 %
    first = ladder_due(LADDER, 0, D(100), D("98.5"), D(1), D(1), ONE)  # exactly 1.5 %
    assert (first.steps_done, first.close_qty) == (1, D("0.50"))
    assert ladder_due(LADDER, 1, D(100), D("98.0"), D(1), D("0.5"), ONE).close_qty == 0  # step 1 done already
    second = ladder_due(LADDER, 1, D(100), D(97), D(1), D("0.5"), ONE)
    assert (second.steps_done, second.close_qty) == (2, D("0.25"))
    assert ladder_due(LADDER, 2, D(100), D(90), D(1), D("0.25"), ONE).close_qty == 0  # the rest is the TP's


def test_ladder_steps_reached_on_one_bar_close_together() -> None:
    due = ladder_due(LADDER, 0, D(100), D(97), D(1), D(1), ONE)
    assert (due.steps_done, due.close_qty) == (2, D("0.75"))


def test_ladder_carries_rounding_to_later_steps_and_never_leaves_dust() -> None:
    # 0.03 entered: 50 % = 0.015 -> 0.01; then 75 % = 0.0225 -> 0.02, minus 0.01 closed = 0.01
    assert ladder_due(LADDER, 0, D(100), D("98.5"), D("0.03"), D("0.03"), ONE).close_qty == D("0.01")
    assert ladder_due(LADDER, 1, D(100), D("97.5"), D("0.03"), D("0.02"), ONE).close_qty == D("0.01")
    # 0.01 entered: half is below the minimum, so nothing now and the step is done; 0.01 left
    due = ladder_due(LADDER, 0, D(100), D("98.5"), D("0.01"), D("0.01"), ONE)
    assert (due.steps_done, due.close_qty) == (1, D(0))
    # a rest below the minimum is closed along with the step: 95 % of 0.10 -> 0.09 leaves 0.01 < 0.02
    dusty = (LadderStep(profit_pct=D(1), close_pct=D(95)),)
    two = Filters(tick_size=D("0.1"), qty_step=D("0.01"), min_qty=D("0.02"))
    assert ladder_due(dusty, 0, D(100), D(99), D("0.10"), D("0.10"), ONE).close_qty == D("0.09")
    assert ladder_due(dusty, 0, D(100), D(99), D("0.10"), D("0.10"), two).close_qty == D("0.10")
    full = (LadderStep(profit_pct=D(1), close_pct=D(60)), LadderStep(profit_pct=D(2), close_pct=D(40)))
    assert ladder_due(full, 1, D(100), D(98), D("1.00"), D("0.37"), ONE).close_qty == D("0.37")


def test_ladder_is_off_by_default() -> None:
    assert BTC.tp_ladder == ()
    assert ladder_due(BTC.tp_ladder, 0, D(100), D(50), D(1), D(1), ONE) == ladder_due((), 0, D(100), D(50), D(1), D(1), ONE)
    assert ladder_due((), 0, D(100), D(50), D(1), D(1), ONE).close_qty == 0
