"""The risk guards (strategies/runtime/risk) in the runtime's order path."""
from __future__ import annotations

from decimal import Decimal

from strategies.runtime.risk import Action, EquityGuard, RiskConfig, Until, GuardWindow
from tests.unit.strategies.bt_helpers import Scripted, candles, fills, run

D = Decimal
UP = (100.0, 101.0, 99.0, 100.5)


class Guarded(Scripted):
    def __init__(self, actions, risk: RiskConfig, **kw):  # type: ignore[no-untyped-def]
        super().__init__(actions, **kw)
        self.risk = risk

    def risk_config(self) -> RiskConfig:
        return self.risk


def test_entries_over_a_limit_are_refused_with_the_guards_reason() -> None:
    def both(ctx, bar):  # type: ignore[no-untyped-def]
        ctx.market("BTCUSDT", "Buy", D(1), reason="entry")

    def second(ctx, bar):  # type: ignore[no-untyped-def]
        assert ctx.market("ETHUSDT", "Buy", D(1), reason="entry") is None
        ctx.market("BTCUSDT", "Sell", D(1), reason="exit", reduce_only=True)  # exits always pass

    s = Guarded({0: both, 2: second}, RiskConfig(max_open_positions=1), symbols=("BTCUSDT", "ETHUSDT"))
    bt = run(s, {"BTCUSDT": candles([UP] * 5), "ETHUSDT": candles([UP] * 5, symbol="ETHUSDT")})
    assert list(bt.ctx.refusals) == ["max_open_positions: 1 positions open, at most 1"]
    assert [(f.symbol, f.side) for f in fills(s)] == [("BTCUSDT", "Buy"), ("BTCUSDT", "Sell")]
    assert bt.ctx.state.get("_risk")["refusals"] == {"max_open_positions": 1}  # persisted for a restart


def test_a_tripped_flatten_guard_closes_positions_and_refuses_entries() -> None:
    guard = EquityGuard("day_stop", GuardWindow.DAY, D(2), Action.FLATTEN_AND_HALT, Until.NEXT_DAY)
    s = Guarded({0: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry"),
                 3: lambda ctx, bar: ctx.market("BTCUSDT", "Buy", D(1), reason="entry")},
                RiskConfig(equity_guards=(guard,)))
    rows = [UP, UP, (100.0, 100.0, 96.0, 97.0), (97.0, 97.5, 96.5, 97.0), UP, UP]
    bt = run(s, {"BTCUSDT": candles(rows)}, balance=150)
    entry, flat = fills(s)
    assert (flat.side, flat.reason, flat.price) == ("Sell", "guard", D(97))
    kinds = [n.kind for n in bt.ctx.notices]
    assert "guard_halted" in kinds or "guard_tripped" in kinds
    assert bt.ctx.refusals and next(iter(bt.ctx.refusals)).startswith("halted")
