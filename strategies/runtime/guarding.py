"""The risk guards (strategies/runtime/risk) in the runtime's order path.

`RiskGate` is an entry guard for the context: it asks `RiskGuards.check_entry` with the order's
notional (limit price, else the last price) and the bot's open positions, records the entry when
allowed, and keeps the guards' state in the strategy's persistent state (`_risk`). `tick` feeds the
bot's equity once per instant, before the strategy decides: tripped guards become notices, and a
guard that says flatten cancels the bot's orders and closes every position with reduce-only orders.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.contracts import RISK_STATE_KEY
from strategies.runtime.model import ZERO
from strategies.runtime.orders import PlaceOrder
from strategies.runtime.risk import RiskConfig, RiskGuards

if TYPE_CHECKING:
    from strategies.runtime.context import Context


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


class RiskGate:
    def __init__(self, config: RiskConfig, ctx: Context) -> None:
        saved = ctx.state.get(RISK_STATE_KEY)
        self.guards = RiskGuards.from_state(config, saved) if isinstance(saved, dict) else RiskGuards(config)
        self._saved = saved

    def _save(self, ctx: Context) -> None:
        state = self.guards.to_state()
        if state != self._saved:
            ctx.state.set(RISK_STATE_KEY, state)
            self._saved = state

    def check_entry(self, order: PlaceOrder, ctx: Context) -> str | None:
        price = order.price or ctx.last_price(order.symbol)
        held = {p.symbol: p.qty * p.avg_price for p in ctx.positions()}
        now = _utc(ctx.now_ms)
        refusal = self.guards.check_entry(now, order.symbol, order.qty * price, held)
        if refusal is None:
            self.guards.record_entry(now, order.symbol)
        self._save(ctx)
        return None if refusal is None else f"{refusal.code.value}: {refusal.text}"

    def size_factor(self, ctx: Context) -> Decimal:
        return self.guards.size_factor(_utc(ctx.now_ms))

    def tick(self, ctx: Context) -> None:
        equity = ctx.equity
        if equity <= ZERO:
            return
        events = self.guards.on_equity(_utc(ctx.now_ms), equity)
        flatten = False
        for e in events:
            ctx.emit(f"guard_{e.kind.value}", guard=e.guard, reason=e.reason, flatten=e.flatten,
                     until=e.until.isoformat() if e.until else None)
            flatten = flatten or e.flatten
        if flatten:
            ctx.cancel_all()
            for pos in ctx.positions():
                ctx.close(pos.symbol, reason="guard")
        self._save(ctx)
