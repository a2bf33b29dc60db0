"""ShortSeller's rules, one pure function each, in the order of its table in ../shared/strategies.md.

Prices, EMA values and quantities are Decimals (an EMA computed as a float converts exactly with
`Decimal(x)`); times are aware UTC datetimes, `now` being the close time of the bar being decided.
The boundary choices are written next to each rule and in README.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

import msgspec

from strategies.shortseller.config import LadderStep, SymbolRules

HUNDRED = Decimal(100)


class Regime(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


def regime(close: Decimal, ema_fast: Decimal, ema_slow: Decimal, require_ema_order: bool = False) -> Regime:
    """ACTIVE when the close is below both EMAs (and, optionally, EMA fast < EMA slow).

    Strictly below: a close exactly on an EMA is INACTIVE.
    """
    below_both = close < ema_fast and close < ema_slow
    ordered = ema_fast < ema_slow or not require_ema_order
    return Regime.ACTIVE if below_both and ordered else Regime.INACTIVE


def cross_event(prev_close: Decimal, close: Decimal, prev_ema: Decimal, ema: Decimal) -> bool:
    """The close crossed below an EMA: previous close at or above it, this close below it.

    Each close is compared with its own bar's EMA value (the previous close with the previous
    bar's EMA), as the original did. A close exactly on the EMA is "at or above" as the previous
    close and not "below" as this close.
    """
    return prev_close >= prev_ema and close < ema


class BarValues(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A closed bar's close and its EMA values."""

    close: Decimal
    ema_fast: Decimal
    ema_slow: Decimal


def crossed_emas(prev: BarValues | None, bar: BarValues) -> tuple[str, ...]:
    """The EMAs this bar's close crossed below ("ema_fast", "ema_slow"); none without a previous bar."""
    if prev is None:
        return ()
    out = []
    if cross_event(prev.close, bar.close, prev.ema_fast, bar.ema_fast):
        out.append("ema_fast")
    if cross_event(prev.close, bar.close, prev.ema_slow, bar.ema_slow):
        out.append("ema_slow")
    return tuple(out)


class DailyCrosses(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A symbol's crosses on one UTC day."""

    day: date
    count: int


def utc_day(now: datetime) -> date:
    return now.astimezone(timezone.utc).date()


def crosses_today(counter: DailyCrosses | None, now: datetime) -> int:
    """Crosses counted on now's UTC day (the count resets at 00:00 UTC)."""
    return counter.count if counter is not None and counter.day == utc_day(now) else 0


def count_crosses(counter: DailyCrosses | None, now: datetime, crosses: int) -> DailyCrosses:
    """The counter after this bar's crosses (each EMA crossed counts once).

    A cross belongs to the UTC day of its decision, the bar's close time: the 23:55 bar, which
    closes at 00:00, counts for the new day.
    """
    return DailyCrosses(day=utc_day(now), count=crosses_today(counter, now) + crosses)


def in_cooldown(last_entry_at: datetime | None, now: datetime, cooldown_s: int) -> bool:
    """Within cooldown_s of the symbol's last entry; free again at exactly cooldown_s."""
    return last_entry_at is not None and now - last_entry_at < timedelta(seconds=cooldown_s)


class SignalRefusal(StrEnum):
    NO_CROSS = "no_cross"
    REGIME_INACTIVE = "regime_inactive"
    NOT_FLAT = "not_flat"
    COOLDOWN = "cooldown"
    CROSS_CAP = "cross_cap"
    SIZE_TOO_SMALL = "size_too_small"


@dataclass(frozen=True)
class Refused:
    reason: SignalRefusal
    detail: str


def entry_allowed(*, crossed: bool, regime: Regime, flat: bool, last_entry_at: datetime | None,
                  now: datetime, crosses_before: int, rules: SymbolRules) -> Refused | None:
    """None when every entry condition holds, else the first that does not, in the table's order.

    `crosses_before` is the day's count before this bar's crosses: the cap refuses once 12 crosses
    came earlier that day, so the 12th cross of a day may enter and the 13th may not.
    """
    if not crossed:
        return Refused(SignalRefusal.NO_CROSS, "no cross below an EMA on this bar")
    if regime is not Regime.ACTIVE:
        return Refused(SignalRefusal.REGIME_INACTIVE, "regime INACTIVE")
    if not flat:
        return Refused(SignalRefusal.NOT_FLAT, f"a position is open on {rules.symbol}")
    if in_cooldown(last_entry_at, now, rules.cooldown_s):
        assert last_entry_at is not None
        left_s = rules.cooldown_s - int((now - last_entry_at).total_seconds())
        return Refused(SignalRefusal.COOLDOWN, f"cooldown: {left_s} s left of {rules.cooldown_s} s")
    if crosses_before >= rules.daily_cross_cap:
        return Refused(SignalRefusal.CROSS_CAP, f"{crosses_before} crosses earlier today, cap {rules.daily_cross_cap}")
    return None


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


class ExitLevels(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A short's exchange-side levels: prices, and the trailing stop's distance in price."""

    stop_loss: Decimal
    take_profit: Decimal
    trail_distance: Decimal
    trail_activation: Decimal | None  # None: the trail is active from the start


def exit_levels(entry_price: Decimal, rules: SymbolRules, tick_size: Decimal) -> ExitLevels:
    """Stop, target and trailing stop of a short entered at entry_price, on the price tick.

    Each level is rounded toward the entry price (the trail distance down), so the exchange acts
    no later than the rule: the loss never exceeds stop_loss_pct, and each level stays at least
    one tick from the entry.
    """
    tick_above = floor_to(entry_price, tick_size) + tick_size
    tick_below = ceil_to(entry_price, tick_size) - tick_size
    stop = max(floor_to(entry_price * (1 + rules.stop_loss_pct / HUNDRED), tick_size), tick_above)
    target = min(ceil_to(entry_price * (1 - rules.take_profit_pct / HUNDRED), tick_size), tick_below)
    distance = max(floor_to(entry_price * rules.trail_distance_pct / HUNDRED, tick_size), tick_size)
    activation = None
    if rules.trail_activation_pct > 0:
        activation = min(ceil_to(entry_price * (1 - rules.trail_activation_pct / HUNDRED), tick_size), tick_below)
    return ExitLevels(stop_loss=stop, take_profit=target, trail_distance=distance, trail_activation=activation)


class ExitReason(StrEnum):
    """Why the bot closed a position; the value is the orderLinkId tag."""

    TAKE_PROFIT = "tp"
    STOP_LOSS = "sl"
    MAX_HOLD = "hold"
    REGIME = "regime"


def profit_pct(entry_price: Decimal, price: Decimal) -> Decimal:
    """A short's profit in percent of the entry price (negative: a loss)."""
    return (entry_price - price) / entry_price * HUNDRED


def bot_side_exit(*, entry_price: Decimal, close: Decimal, entry_time: datetime, now: datetime,
                  regime: Regime, rules: SymbolRules) -> ExitReason | None:
    """The first bot-side exit that applies at this close, in the table's order, or None.

    Profit and loss at exactly the target or the stop exit; the hold limit exits only beyond
    max_hold_s (24 h 00 stays, 24 h 01 goes); a regime turned INACTIVE exits from exactly
    regime_exit_grace_s after the entry on (never within the first hour).
    """
    pnl_pct = profit_pct(entry_price, close)
    held = now - entry_time
    if pnl_pct >= rules.take_profit_pct:
        return ExitReason.TAKE_PROFIT
    if -pnl_pct >= rules.stop_loss_pct:
        return ExitReason.STOP_LOSS
    if held > timedelta(seconds=rules.max_hold_s):
        return ExitReason.MAX_HOLD
    if regime is Regime.INACTIVE and held >= timedelta(seconds=rules.regime_exit_grace_s):
        return ExitReason.REGIME
    return None


@dataclass(frozen=True)
class Filters:
    """An instrument's order filters (Bybit instruments-info lotSizeFilter / priceFilter)."""

    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    min_notional: Decimal = Decimal(5)
    max_market_qty: Decimal | None = None


def entry_qty(wallet_balance: Decimal, price: Decimal, rules: SymbolRules, filters: Filters) -> Decimal | Refused:
    """wallet x wallet_fraction_pct x leverage of notional at price, floored to the quantity step.

    Never raised to the minimum: below the minimum quantity or notional the entry is refused.
    """
    notional = wallet_balance * rules.wallet_fraction_pct / HUNDRED * rules.leverage
    qty = floor_to(notional / price, filters.qty_step) if notional > 0 else Decimal(0)
    if filters.max_market_qty is not None:
        qty = min(qty, floor_to(filters.max_market_qty, filters.qty_step))
    if qty < filters.min_qty or qty * price < filters.min_notional:
        return Refused(SignalRefusal.SIZE_TOO_SMALL,
                       f"{qty} at {price} is below the minimum ({filters.min_qty} / {filters.min_notional} USDT)")
    return qty


@dataclass(frozen=True)
class LadderDue:
    steps_done: int  # steps reached so far, this bar's included
    close_qty: Decimal  # to close now with a reduce-only market order (0: nothing now)


def ladder_due(steps: tuple[LadderStep, ...], steps_done: int, entry_price: Decimal, close: Decimal,
               entry_qty: Decimal, open_qty: Decimal, filters: Filters) -> LadderDue:
    """The take-profit ladder at this close: steps newly reached and the quantity to close.

    Step i closes close_pct % of the entry quantity; the quantity is the cumulative target floored
    to the step minus what is already closed, so rounding is carried to later steps, and a rest
    below the minimum quantity is closed with it. Steps summing to 100 % close the position.
    """
    pnl_pct = profit_pct(entry_price, close)
    reached = steps_done
    while reached < len(steps) and pnl_pct >= steps[reached].profit_pct:
        reached += 1
    if reached == steps_done:
        return LadderDue(steps_done, Decimal(0))
    cumulative_pct = sum((s.close_pct for s in steps[:reached]), Decimal(0))
    if cumulative_pct >= HUNDRED:
        return LadderDue(reached, open_qty)
    target_closed = floor_to(entry_qty * cumulative_pct / HUNDRED, filters.qty_step)
    qty = max(target_closed - (entry_qty - open_qty), Decimal(0))
    if open_qty - qty < filters.min_qty:
        qty = open_qty
    elif qty < filters.min_qty:
        qty = Decimal(0)
    return LadderDue(reached, qty)
