"""The fill record the accounting consumes, and how executions are classified and ordered."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

TRADE = "Trade"
FUNDING = "Funding"
# Executions that move the position. Only `Trade` is a strategy's own trade (counted in fills and
# volume); ADL, liquidation, delivery and block/moved positions still change what is held, so the
# books must follow them or every later average entry would be wrong.
POSITION_EXEC_TYPES = frozenset(
    {"Trade", "AdlTrade", "BustTrade", "Delivery", "BlockTrade", "MovePosition", "FutureSpread"}
)


@dataclass(frozen=True)
class LedgerFill:
    """One execution as stored in `trading.fills` (commission: positive is paid)."""

    bot_id: str
    symbol: str
    exec_id: str
    exec_type: str
    side: str
    exec_price: Decimal
    exec_qty: Decimal
    exec_time: datetime
    commission: Decimal
    seq: int | None = None

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        """Execution order: time, then Bybit's per-symbol seq, then exec_id (byte order).

        The SQL side uses the same key: `(exec_time, COALESCE(seq, 0), exec_id COLLATE "C")`.
        """
        return (self.exec_time, self.seq if self.seq is not None else 0, self.exec_id)

    @property
    def signed_qty(self) -> Decimal:
        return self.exec_qty if self.side == "Buy" else -self.exec_qty

    @property
    def moves_position(self) -> bool:
        return self.exec_type in POSITION_EXEC_TYPES and self.side in ("Buy", "Sell")

    @property
    def is_trade(self) -> bool:
        return self.exec_type == TRADE

    @property
    def is_funding(self) -> bool:
        return self.exec_type == FUNDING


def execution_order(fills: list[LedgerFill]) -> list[LedgerFill]:
    """Fills in the order they happened, whatever order they arrived in."""
    return sorted(fills, key=lambda f: f.sort_key)
