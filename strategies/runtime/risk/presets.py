"""The equity guards of the bots in ../shared/strategies.md, as configurations."""
from __future__ import annotations

from decimal import Decimal

from strategies.runtime.risk.config import Action, EquityGuard, Until, GuardWindow


def lxalgo_equity_guards() -> tuple[EquityGuard, ...]:
    """Day -2 %: close all, no entries until the next UTC day. Week -4 %: half size until equity
    is back to the week's start less half the week's worst loss. Week -6 %: close all, halted
    until next Monday 00:00 UTC."""
    return (
        EquityGuard("day_loss", GuardWindow.DAY, Decimal(2), Action.FLATTEN_AND_HALT, Until.NEXT_DAY),
        EquityGuard("week_half_size", GuardWindow.WEEK, Decimal(4), Action.SCALE_SIZE, Until.RECOVERY,
                    size_factor=Decimal("0.5"), recovery_fraction=Decimal("0.5")),
        EquityGuard("week_loss", GuardWindow.WEEK, Decimal(6), Action.FLATTEN_AND_HALT, Until.NEXT_WEEK),
    )


def momentum_equity_guards() -> tuple[EquityGuard, ...]:
    """Day -3 %: no entries that day. Week -8 %: half size for the week. Month -15 %: halted until
    next month. Drawdown 20 % from the equity peak: halted until the operator resumes."""
    return (
        EquityGuard("day_loss", GuardWindow.DAY, Decimal(3), Action.BLOCK_ENTRIES, Until.NEXT_DAY),
        EquityGuard("week_half_size", GuardWindow.WEEK, Decimal(8), Action.SCALE_SIZE, Until.NEXT_WEEK,
                    size_factor=Decimal("0.5")),
        EquityGuard("month_loss", GuardWindow.MONTH, Decimal(15), Action.HALT, Until.NEXT_MONTH),
        EquityGuard("drawdown", GuardWindow.PEAK, Decimal(20), Action.HALT, Until.MANUAL),
    )
