"""Bybit V5 typed records: what the parsers return (pure data, no parsing).

The same `Execution` record comes from a WebSocket `execution` push and from a REST
`/v5/execution/list` row, so the listener's live path and its catch-up share one write path.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Union

from shared.bybit.attribution import TRADE_EXEC_TYPE, derive_close_reason


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SIDES = frozenset({"Buy", "Sell", ""})
PRIVATE_TOPICS = frozenset({"execution", "order", "position", "wallet"})


class ParseError(ValueError):
    """A field is missing or malformed; turned into a `BadFrame` at the module boundary."""


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame (or one row of it) that could not be parsed; `raw` is kept for the dead-letter table."""

    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class Execution:
    category: str
    symbol: str
    exec_id: str
    order_id: str
    order_link_id: str
    side: str
    exec_type: str
    exec_price: Decimal
    exec_qty: Decimal
    exec_value: Decimal
    exec_fee: Decimal
    fee_rate: Decimal | None
    fee_currency: str | None
    is_maker: bool | None
    closed_size: Decimal | None
    exec_pnl: Decimal | None
    leaves_qty: Decimal | None
    order_price: Decimal | None
    order_qty: Decimal | None
    order_type: str | None
    stop_order_type: str | None
    mark_price: Decimal | None
    seq: int | None
    exec_time: datetime

    @property
    def is_trade(self) -> bool:
        """Only `Trade` executions are a strategy's trades; funding, ADL, liquidation... are not."""
        return self.exec_type == TRADE_EXEC_TYPE

    def close_reason(self, bot_ids: frozenset[str] | None = None) -> str:
        return derive_close_reason(self.exec_type, self.stop_order_type, self.order_link_id, bot_ids)


@dataclass(frozen=True, slots=True)
class FastExecution:
    """`execution.fast`: a Trade fill without fee or value; never stored as a fill."""

    category: str
    symbol: str
    exec_id: str
    order_id: str
    order_link_id: str
    side: str
    exec_price: Decimal
    exec_qty: Decimal
    is_maker: bool | None
    seq: int | None
    exec_time: datetime


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    category: str
    symbol: str
    order_id: str
    order_link_id: str
    side: str
    order_type: str
    order_status: str
    price: Decimal | None
    qty: Decimal
    avg_price: Decimal | None
    leaves_qty: Decimal | None
    cum_exec_qty: Decimal
    cum_exec_value: Decimal | None
    cum_exec_fee: Decimal | None
    reduce_only: bool | None
    time_in_force: str | None
    stop_order_type: str | None
    trigger_price: Decimal | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    cancel_type: str | None
    reject_reason: str | None
    position_idx: int | None
    created_time: datetime
    updated_time: datetime


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    category: str
    symbol: str
    side: str
    size: Decimal
    avg_price: Decimal | None
    mark_price: Decimal | None
    liq_price: Decimal | None
    unrealised_pnl: Decimal | None
    cur_realised_pnl: Decimal | None
    cum_realised_pnl: Decimal | None
    leverage: Decimal | None
    position_value: Decimal | None
    position_idx: int | None
    seq: int | None
    updated_time: datetime | None

    @property
    def signed_size(self) -> Decimal:
        """Positive long, negative short, zero flat."""
        return -self.size if self.side == "Sell" else self.size

    @property
    def is_flat(self) -> bool:
        return self.size == 0 or self.side == ""


@dataclass(frozen=True, slots=True)
class CoinBalance:
    coin: str
    equity: Decimal | None
    wallet_balance: Decimal | None
    available_to_withdraw: Decimal | None
    unrealised_pnl: Decimal | None
    cum_realised_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class WalletSnapshot:
    account_type: str | None
    total_equity: Decimal | None
    total_wallet_balance: Decimal | None
    total_margin_balance: Decimal | None
    total_available_balance: Decimal | None
    total_perp_upl: Decimal | None
    total_initial_margin: Decimal | None
    total_maintenance_margin: Decimal | None
    coins: tuple[CoinBalance, ...]
    ts: datetime | None


@dataclass(frozen=True, slots=True)
class Kline:
    symbol: str
    interval: str
    start: datetime
    end: datetime | None
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal
    confirm: bool


@dataclass(frozen=True, slots=True)
class Ticker:
    """Linear tickers arrive as a snapshot then deltas: every market field may be absent."""

    symbol: str
    last_price: Decimal | None
    mark_price: Decimal | None
    index_price: Decimal | None
    volume_24h: Decimal | None
    turnover_24h: Decimal | None
    bid1_price: Decimal | None
    ask1_price: Decimal | None
    funding_rate: Decimal | None
    ts: datetime | None


@dataclass(frozen=True, slots=True)
class PublicTrade:
    symbol: str
    trade_id: str
    side: str
    price: Decimal
    qty: Decimal
    ts: datetime
    block_trade: bool


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    status: str
    tick_size: Decimal
    qty_step: Decimal
    min_order_qty: Decimal
    max_order_qty: Decimal
    min_notional: Decimal | None


@dataclass(frozen=True, slots=True)
class AuthResult:
    success: bool
    ret_code: int | None
    ret_msg: str
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    success: bool
    ret_msg: str
    req_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    req_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class ExecutionPage:
    """One REST page: parsed rows, rows that failed, and the cursor for the next page ("" at the end)."""

    executions: tuple[Execution, ...]
    rejected: tuple[BadFrame, ...]
    next_cursor: str


Record = Union[
    Execution, FastExecution, OrderUpdate, PositionSnapshot, WalletSnapshot, Kline, Ticker, PublicTrade,
    AuthResult, SubscribeResult, Pong,
]
# A good envelope yields its records, with a BadFrame in place of each row that failed;
# a frame that is bad as a whole yields a single BadFrame.
ParsedFrame = list[Union[Record, BadFrame]]
