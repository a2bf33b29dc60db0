"""Pure shaping of parsed records into database rows and Redis/pub-sub JSON, and the position cross-check."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import msgspec

from shared.bybit.attribution import TRADE_EXEC_TYPE
from shared.bybit.records import Execution, OrderUpdate, PositionSnapshot, WalletSnapshot

# Executions that move a position; funding and settlement only move money.
POSITION_EXEC_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade", "BlockTrade"})

FILL_COLUMNS = (
    "bot_id", "symbol", "category", "exec_id", "order_id", "client_order_id", "side", "exec_type", "exec_price",
    "exec_qty", "exec_value", "exec_time", "commission", "fee_rate", "fee_currency", "is_maker", "closed_size",
    "exec_pnl", "order_type", "order_price", "order_qty", "leaves_qty", "mark_price", "stop_order_type", "seq",
    "close_reason", "source",
)
ORDER_COLUMNS = (
    "order_id", "bot_id", "symbol", "category", "client_order_id", "side", "order_type", "status", "price", "qty",
    "avg_price", "leaves_qty", "cum_exec_qty", "cum_exec_value", "cum_exec_fee", "reduce_only", "time_in_force",
    "stop_order_type", "trigger_price", "take_profit", "stop_loss", "cancel_type", "reject_reason",
    "created_time", "updated_time",
)
EVENT_COLUMNS = ("order_id", "bot_id", "status", "cum_exec_qty", "leaves_qty", "updated_time")


# One encoder each, built once: json.dumps with any option builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# msgspec writes Decimals as decimal strings and datetimes as RFC 3339 itself, several times faster than
# the json module; the text is UTF-8 (PostgreSQL's json input takes it as is).
_ROWS_ENCODER = msgspec.json.Encoder()


def rows_json(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A batch as one JSON array of objects, expanded server-side by json_populate_recordset.

    One text parameter instead of one array per column: the numbers travel as decimal strings and
    PostgreSQL's numeric input parses them, so nothing passes through float and the client does no
    per-value adaptation work.
    """
    shape = _row_struct(columns)
    return _ROWS_ENCODER.encode([shape(*row) for row in rows]).decode()


@lru_cache(maxsize=16)
def _row_struct(columns: tuple[str, ...]) -> type[msgspec.Struct]:
    """A msgspec struct with these fields, in this order: built from a tuple in C and encoded as an object,
    about ten times cheaper than a dict per row."""
    return msgspec.defstruct("Row", columns)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


_str = encode_basestring_ascii  # a JSON string literal, escaped exactly as the default encoder does


def _opt_str(value: str | None) -> str:
    return "null" if value is None else _str(value)


def _num(value: Decimal | None) -> str:
    return "null" if value is None else f'"{value!s}"'  # a Decimal's str is plain ASCII: nothing to escape


def _bool(value: bool | None) -> str:
    return "null" if value is None else "true" if value else "false"


def iso_utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ListenerFill:
    """An execution attributed to the bot whose key received it."""

    bot_id: str
    execution: Execution
    source: str  # "ws" | "sync"
    close_reason: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "close_reason", self.execution.close_reason(frozenset({self.bot_id})))

    def row(self) -> tuple[Any, ...]:
        e = self.execution
        return (
            self.bot_id, e.symbol, e.category, e.exec_id, e.order_id, e.order_link_id or None, e.side, e.exec_type,
            e.exec_price, e.exec_qty, e.exec_value, e.exec_time, e.exec_fee, e.fee_rate, e.fee_currency,
            e.is_maker, e.closed_size, e.exec_pnl, e.order_type, e.order_price, e.order_qty, e.leaves_qty,
            e.mark_price, e.stop_order_type, e.seq, self.close_reason, self.source,
        )

    def message(self) -> str:
        """The `fills_channel` payload: numbers as decimal strings, times ISO UTC.

        Its keys are the `trading.fills` column names, so the same text is also the row in the
        batch insert (json_populate_recordset ignores `is_trade`): one encoding per fill. Written
        out field by field (strings escaped by the json module's own C escaper): the same text as
        `json.dumps(self.message_fields(), separators=(",", ":"))`, at half the cost.
        """
        e = self.execution
        return (
            f'{{"bot_id":{_str(self.bot_id)},"exec_id":{_str(e.exec_id)},"symbol":{_str(e.symbol)},'
            f'"category":{_str(e.category)},"side":{_str(e.side)},"exec_type":{_str(e.exec_type)},'
            f'"is_trade":{"true" if e.exec_type == TRADE_EXEC_TYPE else "false"},'
            f'"exec_price":"{e.exec_price!s}","exec_qty":"{e.exec_qty!s}","exec_value":"{e.exec_value!s}",'
            f'"commission":"{e.exec_fee!s}","fee_rate":{_num(e.fee_rate)},"fee_currency":{_opt_str(e.fee_currency)},'
            f'"is_maker":{_bool(e.is_maker)},"closed_size":{_num(e.closed_size)},"exec_pnl":{_num(e.exec_pnl)},'
            f'"order_id":{_str(e.order_id)},"client_order_id":{_opt_str(e.order_link_id or None)},'
            f'"order_type":{_opt_str(e.order_type)},"order_price":{_num(e.order_price)},'
            f'"order_qty":{_num(e.order_qty)},"leaves_qty":{_num(e.leaves_qty)},"mark_price":{_num(e.mark_price)},'
            f'"stop_order_type":{_opt_str(e.stop_order_type)},"close_reason":{_str(self.close_reason)},'
            f'"exec_time":"{iso_utc(e.exec_time)}","seq":{"null" if e.seq is None else int(e.seq)},'
            f'"source":{_str(self.source)}}}'
        )

    def message_fields(self) -> dict[str, Any]:
        """The `fills_channel` payload as a dict (the reference for `message`)."""
        e = self.execution
        return {
            "bot_id": self.bot_id, "exec_id": e.exec_id, "symbol": e.symbol, "category": e.category,
            "side": e.side, "exec_type": e.exec_type, "is_trade": e.is_trade,
            "exec_price": str(e.exec_price), "exec_qty": str(e.exec_qty), "exec_value": str(e.exec_value),
            "commission": str(e.exec_fee), "fee_rate": _s(e.fee_rate), "fee_currency": e.fee_currency,
            "is_maker": e.is_maker, "closed_size": _s(e.closed_size), "exec_pnl": _s(e.exec_pnl),
            "order_id": e.order_id, "client_order_id": e.order_link_id or None, "order_type": e.order_type,
            "order_price": _s(e.order_price), "order_qty": _s(e.order_qty), "leaves_qty": _s(e.leaves_qty),
            "mark_price": _s(e.mark_price), "stop_order_type": e.stop_order_type,
            "close_reason": self.close_reason, "exec_time": iso_utc(e.exec_time), "seq": e.seq,
            "source": self.source,
        }


# The `fills_channel` message's keys in their order; `is_trade` is derived, the rest are `trading.fills` columns.
MESSAGE_COLUMNS = (
    "bot_id", "exec_id", "symbol", "category", "side", "exec_type", "exec_price", "exec_qty", "exec_value",
    "commission", "fee_rate", "fee_currency", "is_maker", "closed_size", "exec_pnl", "order_id", "client_order_id",
    "order_type", "order_price", "order_qty", "leaves_qty", "mark_price", "stop_order_type", "close_reason",
    "exec_time", "seq", "source",
)


def message_from_row(r: dict[str, Any]) -> str:
    """The `fills_channel` message of a stored fill (a `trading.fills` row with MESSAGE_COLUMNS, as
    psycopg returns them): the same text `Fill.message` gave when the fill was written, so a fill
    announced again from the outbox looks exactly like its first announcement."""
    return (
        f'{{"bot_id":{_str(r["bot_id"])},"exec_id":{_str(r["exec_id"])},"symbol":{_str(r["symbol"])},'
        f'"category":{_str(r["category"])},"side":{_str(r["side"])},"exec_type":{_str(r["exec_type"])},'
        f'"is_trade":{"true" if r["exec_type"] == TRADE_EXEC_TYPE else "false"},'
        f'"exec_price":"{r["exec_price"]!s}","exec_qty":"{r["exec_qty"]!s}","exec_value":"{r["exec_value"]!s}",'
        f'"commission":"{r["commission"]!s}","fee_rate":{_num(r["fee_rate"])},'
        f'"fee_currency":{_opt_str(r["fee_currency"])},"is_maker":{_bool(r["is_maker"])},'
        f'"closed_size":{_num(r["closed_size"])},"exec_pnl":{_num(r["exec_pnl"])},"order_id":{_str(r["order_id"])},'
        f'"client_order_id":{_opt_str(r["client_order_id"])},"order_type":{_opt_str(r["order_type"])},'
        f'"order_price":{_num(r["order_price"])},"order_qty":{_num(r["order_qty"])},'
        f'"leaves_qty":{_num(r["leaves_qty"])},"mark_price":{_num(r["mark_price"])},'
        f'"stop_order_type":{_opt_str(r["stop_order_type"])},"close_reason":{_opt_str(r["close_reason"])},'
        f'"exec_time":"{iso_utc(r["exec_time"].astimezone(UTC))}","seq":{"null" if r["seq"] is None else int(r["seq"])},'
        f'"source":{_opt_str(r["source"])}}}'
    )


def order_row(bot_id: str, o: OrderUpdate) -> tuple[Any, ...]:
    """A `trading.orders` row in text form (numbers as decimal strings, times ISO): the JSON encoder then
    never calls back into Python, and PostgreSQL's numeric and timestamptz input parse it exactly."""
    return (
        o.order_id, bot_id, o.symbol, o.category, o.order_link_id or None, o.side, o.order_type, o.order_status,
        _s(o.price), str(o.qty), _s(o.avg_price), _s(o.leaves_qty), str(o.cum_exec_qty), _s(o.cum_exec_value),
        _s(o.cum_exec_fee), o.reduce_only, o.time_in_force, o.stop_order_type, _s(o.trigger_price),
        _s(o.take_profit), _s(o.stop_loss), o.cancel_type, o.reject_reason, o.created_time.isoformat(),
        o.updated_time.isoformat(),
    )


def order_event_row(bot_id: str, o: OrderUpdate) -> tuple[Any, ...]:
    """A `trading.order_events` row (EVENT_COLUMNS) in the same text form as `order_row`."""
    return (o.order_id, bot_id, o.order_status, str(o.cum_exec_qty), _s(o.leaves_qty), o.updated_time.isoformat())


_TERMINAL = {"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"}


def order_progress(o: OrderUpdate) -> tuple[datetime, int, Decimal]:
    """Sort key of an order state along its lifecycle (mirrors trading.order_status_rank)."""
    rank = 3 if o.order_status in _TERMINAL else 2 if o.order_status == "PartiallyFilled" else (
        0 if o.order_status in ("Created", "Untriggered") else 1)
    return (o.updated_time, rank, o.cum_exec_qty)


def wallet_row(bot_id: str, w: WalletSnapshot, received_at: datetime) -> tuple[Any, ...]:
    coins = [{"coin": c.coin, "equity": _s(c.equity), "wallet_balance": _s(c.wallet_balance),
              "available_to_withdraw": _s(c.available_to_withdraw), "unrealised_pnl": _s(c.unrealised_pnl),
              "cum_realised_pnl": _s(c.cum_realised_pnl)} for c in w.coins]
    return (bot_id, w.ts or received_at, w.account_type, w.total_equity, w.total_wallet_balance,
            w.total_margin_balance, w.total_available_balance, w.total_perp_upl, w.total_initial_margin,
            w.total_maintenance_margin, json.dumps(coins))


def position_value(p: PositionSnapshot, now: datetime) -> str | None:
    """The `position:{bot_id}:{symbol}` JSON, or None when flat (the key is then deleted)."""
    if p.is_flat:
        return None
    return _ENCODER.encode({
        "size": str(p.signed_size), "side": p.side, "avg_price": _s(p.avg_price),
        "unrealized_pnl": _s(p.unrealised_pnl), "mark_price": _s(p.mark_price), "liq_price": _s(p.liq_price),
        "updated_at": iso_utc(p.updated_time or now), "seq": p.seq,
    })


@dataclass
class _SymbolBook:
    anchor_seq: int
    anchor_size: Decimal
    fills: dict[str, tuple[int, Decimal]] = field(default_factory=dict)


@dataclass
class PositionCrossCheck:
    """Checks each exchange position snapshot against the committed fills since the previous one.

    Bybit's `seq` is a cross sequence: a position snapshot carries the seq of the execution that moved
    it. So snapshot(seq=s2) must equal snapshot(seq=s1) plus the position-moving fills with
    s1 < seq <= s2. A difference means a fill is missing here (or arrived out of order): the caller
    runs a REST catch-up.
    """

    books: dict[tuple[str, str], _SymbolBook] = field(default_factory=dict)

    def add_fill(self, fill: ListenerFill) -> None:
        e = fill.execution
        if e.exec_type not in POSITION_EXEC_TYPES or e.seq is None:
            return
        book = self.books.get((fill.bot_id, e.symbol))
        if book is None or e.seq <= book.anchor_seq:
            return
        signed = e.exec_qty if e.side == "Buy" else -e.exec_qty
        book.fills[e.exec_id] = (e.seq, signed)

    def check(self, bot_id: str, p: PositionSnapshot) -> Decimal | None:
        """Re-anchor on the snapshot; return the expected size when it disagrees, else None."""
        if p.seq is None:
            return None
        key = (bot_id, p.symbol)
        book = self.books.get(key)
        if book is None:
            self.books[key] = _SymbolBook(p.seq, p.signed_size)
            return None
        if p.seq < book.anchor_seq:
            return None  # an older snapshot arriving late: nothing to learn from it
        moved = sum((q for s, q in book.fills.values() if s <= p.seq), Decimal(0))
        expected = book.anchor_size + moved
        book.anchor_seq, book.anchor_size = p.seq, p.signed_size
        book.fills = {k: v for k, v in book.fills.items() if v[0] > p.seq}
        return None if expected == p.signed_size else expected
