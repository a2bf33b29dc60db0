"""ShortSeller on the runtime: its rules (signals.py) on each closed bar, its memory in ctx.state.

Per closed bar of a symbol: the regime and the crosses below EMA fast / slow (counted per UTC day);
with a short open, the bot-side exits in their order (or the take-profit ladder); when flat, the
entry rule, then a market Sell carrying the stop and the target, re-based on the fill price with
the trailing stop once it fills. Everything a restart must keep is one record per symbol
(state.SymbolState) under `symbol:{SYMBOL}` in ctx.state.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from strategies.runtime.context import Context, to_decimal
from strategies.runtime.feeds import Subscription, ema
from strategies.runtime.indicators.warmup import ema_settle_bars
from strategies.runtime.model import Bar, BotFill, Position, Rejection
from strategies.runtime.risk.config import RiskConfig
from strategies.runtime.strategy import Strategy
from strategies.runtime.timers import Timer, daily
from strategies.shortseller.config import ShortSellerConfig, SymbolRules
from strategies.shortseller.signals import (
    BarValues,
    Filters,
    SignalRefusal,
    Refused,
    Regime,
    bot_side_exit,
    count_crosses,
    crossed_emas,
    crosses_today,
    entry_allowed,
    entry_qty,
    exit_levels,
    ladder_due,
    profit_pct,
    regime,
)
from strategies.shortseller.state import (
    EMPTY,
    PendingEntry,
    SymbolState,
    TradePlan,
    symbol_from_builtins,
    symbol_to_builtins,
)

log = structlog.get_logger()
SUMMARY_TIMES = ("00:00", "08:00", "14:30")
ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def at(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exactly (no float seconds)."""
    return EPOCH + timedelta(milliseconds=ms)


def state_key(symbol: str) -> str:
    return f"symbol:{symbol}"


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


class ShortSeller(Strategy[ShortSellerConfig]):
    config_class = ShortSellerConfig

    # --- declarations ---------------------------------------------------------------------------
    def subscriptions(self) -> Sequence[Subscription]:
        subs = []
        for r in self.config.rules:
            history = r.ema_slow_len + ema_settle_bars(r.ema_slow_len, self.config.ema_settle_tol)
            subs.append(Subscription(r.symbol, self.config.interval, history=history,
                                     indicators=(("ema_fast", ema(r.ema_fast_len)), ("ema_slow", ema(r.ema_slow_len)))))
        return subs

    def risk_config(self) -> RiskConfig | None:
        """The runtime's backstops for what the rules already ensure: one position per symbol, the
        configured leverage. ShortSeller has no equity guards (../shared/strategies.md)."""
        return RiskConfig(one_position_per_symbol=True, max_leverage=max(r.leverage for r in self.config.rules))

    def timers(self) -> Sequence[Timer]:
        return [daily(f"summary {t}", t) for t in SUMMARY_TIMES]

    # --- state ----------------------------------------------------------------------------------
    def _load(self, ctx: Context, symbol: str) -> SymbolState:
        raw = ctx.state.get(state_key(symbol))
        return EMPTY if raw is None else symbol_from_builtins(raw)

    def _save(self, ctx: Context, symbol: str, st: SymbolState) -> None:
        ctx.state.set(state_key(symbol), symbol_to_builtins(st))  # type: ignore[arg-type]

    # --- events ---------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        now = at(ctx.now_ms)
        for r in self.config.rules:
            sym = r.symbol
            ctx.set_leverage(sym, r.leverage)
            st, pos = self._load(ctx, sym), ctx.position(sym)
            if st.pending_entry is not None and st.position is None and pos.is_flat:
                log.info("shortseller_entry_lost", symbol=sym, order_link_id=st.pending_entry.link_id)
                st = msgspec.structs.replace(st, pending_entry=None)
            if pos.qty > 0:
                ctx.emit("unexpected_position", symbol=sym, qty=str(pos.qty), note="a long: left alone, no entries")
            elif pos.qty < 0 and st.position is None:
                st = self._adopt(ctx, r, st, pos, now)
            elif pos.is_flat and st.position is not None:
                ctx.emit("exit", symbol=sym, reason="closed_while_away", entry_price=str(st.position.entry_price),
                         holding_s=None)
                st = msgspec.structs.replace(st, position=None)
            elif pos.qty < 0 and st.position is not None and _stops_missing(pos):
                self._set_stops(ctx, sym, st.position)
            self._save(ctx, sym, st)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        sym = bar.symbol
        fast, slow = ctx.value(sym, bar.interval, "ema_fast"), ctx.value(sym, bar.interval, "ema_slow")
        if math.isnan(fast) or math.isnan(slow):
            return
        r = self.config.for_symbol(sym)
        now = at(bar.close_ms)
        st = self._load(ctx, sym)
        if st.last_bar_at is not None and now <= st.last_bar_at:
            return  # decided already (bars arrive at least once; a restart may repeat the last one)
        cur = BarValues(close=to_decimal(bar.close), ema_fast=to_decimal(fast), ema_slow=to_decimal(slow))
        prev = st.last_bar if st.last_bar_at == at(bar.start_ms) else self._previous_from_feed(ctx, bar)
        reg = regime(cur.close, cur.ema_fast, cur.ema_slow, r.require_ema_order)
        crossed = crossed_emas(prev, cur)
        crosses_before = crosses_today(st.crosses, now)
        if st.regime is not None and reg is not st.regime:
            ctx.emit("regime_change", symbol=sym, regime=reg.value, previous=st.regime.value, close=str(cur.close),
                     ema_fast=str(cur.ema_fast), ema_slow=str(cur.ema_slow))
        st = msgspec.structs.replace(st, last_bar_at=now, last_bar=cur, regime=reg,
                                     crosses=count_crosses(st.crosses, now, len(crossed)))
        pos = ctx.position(sym)
        if pos.qty < 0 and st.position is not None:
            st = self._manage(ctx, r, st, pos, cur, reg, now)
        else:
            refused = entry_allowed(crossed=bool(crossed), regime=reg, flat=pos.is_flat and st.pending_entry is None,
                                    last_entry_at=st.last_entry_at, now=now, crosses_before=crosses_before, rules=r)
            if refused is None:
                st = self._enter(ctx, r, st, cur, now, crossed)
            elif refused.reason is not SignalRefusal.NO_CROSS:
                self._refused(ctx, sym, refused)
        self._save(ctx, sym, st)

    def on_fill(self, ctx: Context, fill: BotFill) -> None:
        sym = fill.symbol
        st = self._load(ctx, sym)
        plan = st.position
        pending = st.pending_entry
        if fill.side == "Sell" and ((pending is not None and fill.order_link_id == pending.link_id)
                                    or (plan is not None and fill.order_link_id == plan.entry_link_id)):
            r = self.config.for_symbol(sym)
            tick = ctx.instrument(sym).tick_size
            if plan is None:
                plan = TradePlan(entry_time=at(fill.time_ms), entry_price=fill.price, entry_qty=fill.qty,
                                 levels=exit_levels(fill.price, r, tick), entry_link_id=fill.order_link_id,
                                 fees=fill.fee)
            else:  # another part of the same entry order
                qty = plan.entry_qty + fill.qty
                price = (plan.entry_price * plan.entry_qty + fill.price * fill.qty) / qty
                plan = msgspec.structs.replace(plan, entry_price=price, entry_qty=qty,
                                               levels=exit_levels(price, r, tick), fees=plan.fees + fill.fee)
            st = msgspec.structs.replace(st, position=plan, pending_entry=None, last_entry_at=plan.entry_time)
            self._set_stops(ctx, sym, plan)
            bar = st.last_bar
            ctx.emit("entry", symbol=sym, price=str(fill.price), qty=str(plan.entry_qty), regime=_s_regime(st.regime),
                     ema_fast=_s(bar.ema_fast if bar else None), ema_slow=_s(bar.ema_slow if bar else None),
                     stop_loss=str(plan.levels.stop_loss), take_profit=str(plan.levels.take_profit),
                     trail_distance=str(plan.levels.trail_distance), trail_activation=_s(plan.levels.trail_activation),
                     order_link_id=fill.order_link_id)
        elif fill.side == "Buy" and plan is not None:
            plan = msgspec.structs.replace(
                plan, realized_pnl=plan.realized_pnl + (plan.entry_price - fill.price) * fill.qty,
                fees=plan.fees + fill.fee, exit_reason=plan.exit_reason or fill.reason or "unknown",
                last_exit_at=at(fill.time_ms))
            st = msgspec.structs.replace(st, position=plan)
        else:
            return
        self._save(ctx, sym, st)

    def on_position(self, ctx: Context, position: Position) -> None:
        sym = position.symbol
        st = self._load(ctx, sym)
        plan = st.position
        if not position.is_flat or plan is None:
            return
        net = plan.realized_pnl - plan.fees
        ctx.emit("exit", symbol=sym, reason=plan.exit_reason or "unknown", entry_price=str(plan.entry_price),
                 qty=str(plan.entry_qty), pnl_usdt=str(net),
                 pnl_pct=str((net / (plan.entry_price * plan.entry_qty) * 100).quantize(Decimal("0.0001"))),
                 holding_s=int(((plan.last_exit_at or at(ctx.now_ms)) - plan.entry_time).total_seconds()),
                 adopted=plan.adopted)
        self._save(ctx, sym, msgspec.structs.replace(st, position=None))

    def on_rejected(self, ctx: Context, rejection: Rejection) -> None:
        st = self._load(ctx, rejection.symbol)
        if st.pending_entry is not None and rejection.order_link_id == st.pending_entry.link_id:
            self._save(ctx, rejection.symbol, msgspec.structs.replace(st, pending_entry=None))

    def on_timer(self, ctx: Context, name: str) -> None:
        if not name.startswith("summary "):
            return
        now = at(ctx.now_ms)
        symbols: dict[str, Any] = {}
        for r in self.config.rules:
            st = self._load(ctx, r.symbol)
            plan = st.position
            symbols[r.symbol] = {
                "regime": _s_regime(st.regime), "crosses_today": crosses_today(st.crosses, now),
                "position": None if plan is None else {
                    "entry_price": str(plan.entry_price), "qty": str(plan.entry_qty),
                    "holding_s": int((now - plan.entry_time).total_seconds()),
                    "profit_pct": None if st.last_bar is None else
                    str(profit_pct(plan.entry_price, st.last_bar.close).quantize(Decimal("0.01")))},
            }
        ctx.emit("summary", at=name.removeprefix("summary "), equity=str(ctx.equity), symbols=symbols)

    # --- decisions ------------------------------------------------------------------------------
    def _enter(self, ctx: Context, r: SymbolRules, st: SymbolState, cur: BarValues, now: datetime,
               crossed: tuple[str, ...]) -> SymbolState:
        inst = ctx.instrument(r.symbol)
        filters = Filters(tick_size=inst.tick_size, qty_step=inst.qty_step, min_qty=inst.min_order_qty,
                          min_notional=inst.min_notional or ZERO)
        qty = entry_qty(ctx.balance, cur.close, r, filters)
        if isinstance(qty, Refused):
            self._refused(ctx, r.symbol, qty)
            return st
        levels = exit_levels(cur.close, r, inst.tick_size)
        link = ctx.market(r.symbol, "Sell", qty, reason="entry", stop_loss=levels.stop_loss,
                          take_profit=levels.take_profit)
        if link is None:  # refused by a runtime guard (logged and counted there)
            return st
        log.info("shortseller_entry", symbol=r.symbol, crossed=crossed, close=str(cur.close), qty=str(qty),
                 order_link_id=link)
        return msgspec.structs.replace(st, pending_entry=PendingEntry(link_id=link, decided_at=now, qty=qty,
                                                                      levels=levels))

    def _manage(self, ctx: Context, r: SymbolRules, st: SymbolState, pos: Position, cur: BarValues, reg: Regime,
                now: datetime) -> SymbolState:
        plan = st.position
        assert plan is not None
        reason = bot_side_exit(entry_price=plan.entry_price, close=cur.close, entry_time=plan.entry_time, now=now,
                               regime=reg, rules=r)
        if reason is not None:
            ctx.close(r.symbol, reason=reason.value)
            return st
        if r.tp_ladder:
            inst = ctx.instrument(r.symbol)
            filters = Filters(tick_size=inst.tick_size, qty_step=inst.qty_step, min_qty=inst.min_order_qty)
            due = ladder_due(r.tp_ladder, plan.ladder_steps_done, plan.entry_price, cur.close, plan.entry_qty,
                             -pos.qty, filters)
            if due.close_qty > 0:
                ctx.market(r.symbol, "Buy", due.close_qty, reason="ladder", reduce_only=True)
            if due.steps_done != plan.ladder_steps_done:
                st = msgspec.structs.replace(st, position=msgspec.structs.replace(plan, ladder_steps_done=due.steps_done))
        return st

    def _adopt(self, ctx: Context, r: SymbolRules, st: SymbolState, pos: Position, now: datetime) -> SymbolState:
        """A short found open at start: its age from the exchange's created time, levels from its price."""
        entry_time = at(pos.opened_ms) if pos.opened_ms is not None else now
        plan = TradePlan(entry_time=entry_time, entry_price=pos.avg_price, entry_qty=-pos.qty,
                         levels=exit_levels(pos.avg_price, r, ctx.instrument(r.symbol).tick_size), adopted=True)
        ctx.emit("adopted", symbol=r.symbol, qty=str(-pos.qty), entry_price=str(pos.avg_price),
                 entry_time=entry_time.isoformat())
        if _stops_missing(pos):
            self._set_stops(ctx, r.symbol, plan)
        last = entry_time if st.last_entry_at is None else max(st.last_entry_at, entry_time)
        return msgspec.structs.replace(st, position=plan, pending_entry=None, last_entry_at=last)

    def _set_stops(self, ctx: Context, symbol: str, plan: TradePlan) -> None:
        lv = plan.levels
        ctx.set_stops(symbol, stop_loss=lv.stop_loss, take_profit=lv.take_profit, trailing_stop=lv.trail_distance,
                      active_price=lv.trail_activation or ZERO)

    def _previous_from_feed(self, ctx: Context, bar: Bar) -> BarValues | None:
        bars = ctx.bars(bar.symbol, bar.interval)
        if len(bars) < 2 or bars[-2].close_ms != bar.start_ms:
            return None
        fast = ctx.value(bar.symbol, bar.interval, "ema_fast", 1)
        slow = ctx.value(bar.symbol, bar.interval, "ema_slow", 1)
        if math.isnan(fast) or math.isnan(slow):
            return None
        return BarValues(close=to_decimal(bars[-2].close), ema_fast=to_decimal(fast), ema_slow=to_decimal(slow))

    def _refused(self, ctx: Context, symbol: str, refused: Refused) -> None:
        ctx.refusals[f"shortseller_{refused.reason.value}"] += 1
        log.info("entry_refused", bot_id=ctx.bot_id, symbol=symbol, refusal=refused.reason.value, detail=refused.detail)


def _stops_missing(pos: Position) -> bool:
    """Our stops were not (all) set after the entry's fill: a stop, target or trailing stop is missing.
    The entry order carries only the stop and target (from the decision close); the fill's handler sets
    all three from the fill price, so a missing trailing stop means it did not run or did not reach the
    exchange. A stop moved by its trailing stop is ours and left alone."""
    return pos.stop_loss == 0 or pos.take_profit == 0 or pos.trailing_stop == 0


def _s_regime(reg: Regime | None) -> str | None:
    return None if reg is None else reg.value
