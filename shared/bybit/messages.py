"""Bybit V5 JSON -> typed records. Pure: no IO, no clock; bad input becomes a `BadFrame`, never an exception.

The same `Execution` record comes from a WebSocket `execution` push and from a REST
`/v5/execution/list` row, so the listener's live path and its catch-up share one write path.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Union

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRADE_EXEC_TYPE = "Trade"
SIDES = frozenset({"Buy", "Sell", ""})
PRIVATE_TOPICS = frozenset({"execution", "order", "position", "wallet"})

# Bounds that keep a parsed value storable (NUMERIC, bigint, text without NUL) so one odd row
# can never poison a whole database batch.
_MAX_ABS = Decimal(10) ** 24
_MIN_EXPONENT = -60
_MAX_TEXT = 256
_MAX_BIGINT = 2**63 - 1
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z

_PLAIN_DECIMAL = re.compile(r"-?\d{1,24}(?:\.\d{1,40})?")
_plain_decimal = _PLAIN_DECIMAL.fullmatch
_plain_int = re.compile(r"-?\d{1,19}").fullmatch
_LINK_RE = re.compile(r"^([a-z0-9_]{1,32})-([A-Za-z0-9_]{1,32})-([A-Za-z0-9_-]+)$")
_EXEC_TYPE_REASONS = {
    "BustTrade": "liquidation",
    "AdlTrade": "adl",
    "Funding": "funding",
    "Settle": "settlement",
    "Delivery": "delivery",
}
_STOP_ORDER_REASONS = {
    "StopLoss": "stop_loss",
    "PartialStopLoss": "stop_loss",
    "TakeProfit": "take_profit",
    "PartialTakeProfit": "take_profit",
    "TrailingStop": "trailing_stop",
}
_TAG_REASONS = {"sl": "stop_loss", "tp": "take_profit"}


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


# ---- field readers -------------------------------------------------------------------------

def _get(raw: dict[str, Any], key: str) -> Any:
    if key not in raw:
        raise ParseError(f"missing field {key}")
    return raw[key]


def _text(value: Any, key: str, *, allow_empty: bool = True) -> str:
    if type(value) is str and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value and (
            allow_empty or value):
        return value  # the common case; ASCII cannot hold a lone surrogate
    if not isinstance(value, str):
        raise ParseError(f"field {key} is not a string")
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise ParseError(f"field {key} is too long or has NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError(f"field {key} is not valid unicode") from exc
    if not allow_empty and value == "":
        raise ParseError(f"field {key} is empty")
    return value


_MISSING: Any = object()

# The readers below inline the common case (a short ASCII string, a plain decimal string) before
# falling back to the full checks: they run for every field of every row.


def _req_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, _MISSING)
    if type(value) is str and value and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value:
        return value
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return _text(value, key, allow_empty=False)


def _opt_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if type(value) is str and value and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value:
        return value
    if value is None or value == "":
        return None
    return _text(value, key)


def _decimal(value: Any, key: str) -> Decimal:
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)  # the common case, already within every bound below
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ParseError(f"field {key} is not a decimal string")
    if isinstance(value, str):
        if len(value) > 64:
            raise ParseError(f"field {key} is too long")
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ParseError(f"field {key} is not a decimal") from exc
    else:
        result = Decimal(value)
    if not result.is_finite() or abs(result) >= _MAX_ABS:
        raise ParseError(f"field {key} is out of range")
    exponent = result.as_tuple().exponent
    if not isinstance(exponent, int) or not _MIN_EXPONENT <= exponent <= 24:
        raise ParseError(f"field {key} has an unstorable exponent")
    return result


def _req_dec(raw: dict[str, Any], key: str) -> Decimal:
    value = raw.get(key, _MISSING)
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return _decimal(value, key)


def _opt_dec(raw: dict[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)
    if value is None or value == "":
        return None
    return _decimal(value, key)


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ParseError(f"field {key} is not an integer")
    if isinstance(value, str) and _plain_int(value):
        result = int(value)
    elif isinstance(value, int):
        result = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        result = int(value)
    else:
        raise ParseError(f"field {key} is not an integer")
    if abs(result) > _MAX_BIGINT:
        raise ParseError(f"field {key} is out of range")
    return result


def _opt_int(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if type(value) is int and -_MAX_BIGINT <= value <= _MAX_BIGINT:
        return value
    if value is None or value == "":
        return None
    return _int(value, key)


def ms_to_datetime(ms: int) -> datetime:
    """Exchange epoch milliseconds to an aware UTC datetime, without passing through float."""
    if not 0 <= ms <= _MAX_MS:
        raise ParseError("timestamp out of range")
    return _ms_to_datetime(ms)


@lru_cache(maxsize=4096)
def _ms_to_datetime(ms: int) -> datetime:
    # The rows of a frame (and an order's created/updated times) repeat the same few milliseconds.
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _req_time(raw: dict[str, Any], key: str) -> datetime:
    value = raw.get(key, _MISSING)
    if type(value) is str and len(value) <= 15 and _plain_int(value):  # well within bigint
        return ms_to_datetime(int(value))
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return ms_to_datetime(_int(value, key))


def _opt_time(raw: dict[str, Any], key: str) -> datetime | None:
    value = _opt_int(raw, key)
    return None if value is None or value == 0 else ms_to_datetime(value)


def _opt_bool(raw: dict[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, bool):
        raise ParseError(f"field {key} is not a boolean")
    return value


def _side(raw: dict[str, Any], key: str = "side") -> str:
    value = _text(_get(raw, key), key)
    if value not in SIDES:
        raise ParseError(f"field {key} is not Buy/Sell")
    return value


def _category(raw: dict[str, Any], default: str | None) -> str:
    value = raw.get("category")
    if value is None or value == "":
        if not default:
            raise ParseError("missing field category")
        return _text(default, "category")
    return _text(value, "category")


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def dump_raw(value: Any) -> str:
    """A JSON text for any parsed value (Decimals as strings), for dead letters."""
    try:
        return json.dumps(value, default=str, ensure_ascii=True, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return repr(value)[:100_000]


# ---- attribution -----------------------------------------------------------------------------

def parse_order_link_id(order_link_id: str) -> tuple[str, str, str] | None:
    """`"{bot_id}-{tag}-{unique}"` -> (bot_id, tag, unique); None when the order carries no bot tag."""
    if len(order_link_id) > 36:
        return None
    match = _LINK_RE.match(order_link_id)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def derive_close_reason(exec_type: str, stop_order_type: str | None, order_link_id: str,
                        bot_ids: frozenset[str] | None = None) -> str:
    """Why an execution happened: venue events first, then the exchange's stop type, then the bot's tag.

    `bot_ids`, when given, are the bots allowed to claim the order (the connection's own bot): an
    orderLinkId naming anyone else counts as no tag, i.e. a manual order.
    """
    if exec_type in _EXEC_TYPE_REASONS:
        return _EXEC_TYPE_REASONS[exec_type]
    if exec_type != TRADE_EXEC_TYPE:
        return exec_type.lower()
    if stop_order_type in _STOP_ORDER_REASONS:
        return _STOP_ORDER_REASONS[stop_order_type]
    parsed = parse_order_link_id(order_link_id)
    if parsed is None or (bot_ids is not None and parsed[0] not in bot_ids):
        return "manual"
    tag = parsed[1].lower()
    return _TAG_REASONS.get(tag, tag)


# ---- row parsers (raise ParseError) ------------------------------------------------------------

def parse_execution(raw: dict[str, Any], category: str | None = None) -> Execution:
    """A WS `execution` row or a REST `/v5/execution/list` row (REST rows carry no category)."""
    raw = _as_dict(raw, "execution row")
    exec_type = _req_text(raw, "execType")
    return Execution(
        category=_category(raw, category),
        symbol=_req_text(raw, "symbol"),
        exec_id=_req_text(raw, "execId"),
        order_id=_text(_get(raw, "orderId"), "orderId"),
        order_link_id=_text(raw.get("orderLinkId") or "", "orderLinkId"),
        side=_side(raw),
        exec_type=exec_type,
        exec_price=_req_dec(raw, "execPrice"),
        exec_qty=_req_dec(raw, "execQty"),
        exec_value=_req_dec(raw, "execValue"),
        exec_fee=_req_dec(raw, "execFee"),
        fee_rate=_opt_dec(raw, "feeRate"),
        fee_currency=_opt_text(raw, "feeCurrency"),
        is_maker=_opt_bool(raw, "isMaker"),
        closed_size=_opt_dec(raw, "closedSize"),
        exec_pnl=_opt_dec(raw, "execPnl"),
        leaves_qty=_opt_dec(raw, "leavesQty"),
        order_price=_opt_dec(raw, "orderPrice"),
        order_qty=_opt_dec(raw, "orderQty"),
        order_type=_opt_text(raw, "orderType"),
        stop_order_type=_opt_text(raw, "stopOrderType"),
        mark_price=_opt_dec(raw, "markPrice"),
        seq=_opt_int(raw, "seq"),
        exec_time=_req_time(raw, "execTime"),
    )


def parse_fast_execution(raw: dict[str, Any], category: str | None = None) -> FastExecution:
    raw = _as_dict(raw, "execution.fast row")
    return FastExecution(
        category=_category(raw, category),
        symbol=_req_text(raw, "symbol"),
        exec_id=_req_text(raw, "execId"),
        order_id=_text(_get(raw, "orderId"), "orderId"),
        order_link_id=_text(raw.get("orderLinkId") or "", "orderLinkId"),
        side=_side(raw),
        exec_price=_req_dec(raw, "execPrice"),
        exec_qty=_req_dec(raw, "execQty"),
        is_maker=_opt_bool(raw, "isMaker"),
        seq=_opt_int(raw, "seq"),
        exec_time=_req_time(raw, "execTime"),
    )


def parse_order(raw: dict[str, Any], category: str | None = None) -> OrderUpdate:
    """A WS `order` row or a REST `/v5/order/realtime|history` row."""
    raw = _as_dict(raw, "order row")
    return OrderUpdate(
        category=_category(raw, category),
        symbol=_req_text(raw, "symbol"),
        order_id=_req_text(raw, "orderId"),
        order_link_id=_text(raw.get("orderLinkId") or "", "orderLinkId"),
        side=_side(raw),
        order_type=_req_text(raw, "orderType"),
        order_status=_req_text(raw, "orderStatus"),
        price=_opt_dec(raw, "price"),
        qty=_req_dec(raw, "qty"),
        avg_price=_opt_dec(raw, "avgPrice"),
        leaves_qty=_opt_dec(raw, "leavesQty"),
        cum_exec_qty=_req_dec(raw, "cumExecQty"),
        cum_exec_value=_opt_dec(raw, "cumExecValue"),
        cum_exec_fee=_opt_dec(raw, "cumExecFee"),
        reduce_only=_opt_bool(raw, "reduceOnly"),
        time_in_force=_opt_text(raw, "timeInForce"),
        stop_order_type=_opt_text(raw, "stopOrderType"),
        trigger_price=_opt_dec(raw, "triggerPrice"),
        take_profit=_opt_dec(raw, "takeProfit"),
        stop_loss=_opt_dec(raw, "stopLoss"),
        cancel_type=_opt_text(raw, "cancelType"),
        reject_reason=_opt_text(raw, "rejectReason"),
        position_idx=_opt_int(raw, "positionIdx"),
        created_time=_req_time(raw, "createdTime"),
        updated_time=_req_time(raw, "updatedTime"),
    )


def parse_position(raw: dict[str, Any], category: str | None = None) -> PositionSnapshot:
    """A WS `position` row (`entryPrice`) or a REST `/v5/position/list` row (`avgPrice`)."""
    raw = _as_dict(raw, "position row")
    avg_price = _opt_dec(raw, "entryPrice") if "entryPrice" in raw else _opt_dec(raw, "avgPrice")
    return PositionSnapshot(
        category=_category(raw, category),
        symbol=_req_text(raw, "symbol"),
        side=_side(raw),
        size=_req_dec(raw, "size"),
        avg_price=avg_price,
        mark_price=_opt_dec(raw, "markPrice"),
        liq_price=_opt_dec(raw, "liqPrice"),
        unrealised_pnl=_opt_dec(raw, "unrealisedPnl"),
        cur_realised_pnl=_opt_dec(raw, "curRealisedPnl"),
        cum_realised_pnl=_opt_dec(raw, "cumRealisedPnl"),
        leverage=_opt_dec(raw, "leverage"),
        position_value=_opt_dec(raw, "positionValue"),
        position_idx=_opt_int(raw, "positionIdx"),
        seq=_opt_int(raw, "seq"),
        updated_time=_opt_time(raw, "updatedTime"),
    )


def _parse_coin(raw: Any) -> CoinBalance:
    raw = _as_dict(raw, "coin row")
    return CoinBalance(
        coin=_req_text(raw, "coin"),
        equity=_opt_dec(raw, "equity"),
        wallet_balance=_opt_dec(raw, "walletBalance"),
        available_to_withdraw=_opt_dec(raw, "availableToWithdraw"),
        unrealised_pnl=_opt_dec(raw, "unrealisedPnl"),
        cum_realised_pnl=_opt_dec(raw, "cumRealisedPnl"),
    )


def parse_wallet(raw: dict[str, Any], ts: datetime | None = None) -> WalletSnapshot:
    """A WS `wallet` row or a REST wallet-balance row; `ts` is the envelope's time."""
    raw = _as_dict(raw, "wallet row")
    perp_key = "totalPerpUPL" if "totalPerpUPL" in raw else "totalPerpUpl"
    return WalletSnapshot(
        account_type=_opt_text(raw, "accountType"),
        total_equity=_opt_dec(raw, "totalEquity"),
        total_wallet_balance=_opt_dec(raw, "totalWalletBalance"),
        total_margin_balance=_opt_dec(raw, "totalMarginBalance"),
        total_available_balance=_opt_dec(raw, "totalAvailableBalance"),
        total_perp_upl=_opt_dec(raw, perp_key),
        total_initial_margin=_opt_dec(raw, "totalInitialMargin"),
        total_maintenance_margin=_opt_dec(raw, "totalMaintenanceMargin"),
        coins=tuple(_parse_coin(c) for c in _as_list(raw.get("coin", []), "coin")),
        ts=ts,
    )


def parse_ws_kline(raw: dict[str, Any], symbol: str) -> Kline:
    raw = _as_dict(raw, "kline row")
    return Kline(
        symbol=symbol,
        interval=_req_text(raw, "interval"),
        start=_req_time(raw, "start"),
        end=_req_time(raw, "end"),
        open=_req_dec(raw, "open"),
        high=_req_dec(raw, "high"),
        low=_req_dec(raw, "low"),
        close=_req_dec(raw, "close"),
        volume=_req_dec(raw, "volume"),
        turnover=_req_dec(raw, "turnover"),
        confirm=bool(_opt_bool(raw, "confirm")),
    )


def parse_rest_kline(row: list[Any], symbol: str, interval: str) -> Kline:
    """A REST `/v5/market/kline` row `[start, open, high, low, close, volume, turnover]`."""
    row = _as_list(row, "kline row")
    if len(row) != 7:
        raise ParseError("kline row does not have 7 items")
    return Kline(
        symbol=symbol,
        interval=interval,
        start=ms_to_datetime(_int(row[0], "start")),
        end=None,
        open=_decimal(row[1], "open"),
        high=_decimal(row[2], "high"),
        low=_decimal(row[3], "low"),
        close=_decimal(row[4], "close"),
        volume=_decimal(row[5], "volume"),
        turnover=_decimal(row[6], "turnover"),
        confirm=True,
    )


def parse_ticker(raw: dict[str, Any], ts: datetime | None = None) -> Ticker:
    raw = _as_dict(raw, "ticker")
    return Ticker(
        symbol=_req_text(raw, "symbol"),
        last_price=_opt_dec(raw, "lastPrice"),
        mark_price=_opt_dec(raw, "markPrice"),
        index_price=_opt_dec(raw, "indexPrice"),
        volume_24h=_opt_dec(raw, "volume24h"),
        turnover_24h=_opt_dec(raw, "turnover24h"),
        bid1_price=_opt_dec(raw, "bid1Price"),
        ask1_price=_opt_dec(raw, "ask1Price"),
        funding_rate=_opt_dec(raw, "fundingRate"),
        ts=ts,
    )


def parse_public_trade(raw: dict[str, Any]) -> PublicTrade:
    raw = _as_dict(raw, "public trade")
    return PublicTrade(
        symbol=_req_text(raw, "s"),
        trade_id=_req_text(raw, "i"),
        side=_side(raw, "S"),
        price=_req_dec(raw, "p"),
        qty=_req_dec(raw, "v"),
        ts=_req_time(raw, "T"),
        block_trade=bool(_opt_bool(raw, "BT")),
    )


def parse_instrument(raw: dict[str, Any]) -> Instrument:
    raw = _as_dict(raw, "instrument")
    price_filter = _as_dict(_get(raw, "priceFilter"), "priceFilter")
    lot = _as_dict(_get(raw, "lotSizeFilter"), "lotSizeFilter")
    return Instrument(
        symbol=_req_text(raw, "symbol"),
        status=_req_text(raw, "status"),
        tick_size=_req_dec(price_filter, "tickSize"),
        qty_step=_req_dec(lot, "qtyStep"),
        min_order_qty=_req_dec(lot, "minOrderQty"),
        max_order_qty=_req_dec(lot, "maxOrderQty"),
        min_notional=_opt_dec(lot, "minNotionalValue"),
    )


# ---- REST result parsers (never raise) ---------------------------------------------------------

def _rows(result: Any, parse: Any) -> tuple[list[Any], list[BadFrame], str]:
    try:
        result = _as_dict(result, "result")
        rows = _as_list(_get(result, "list"), "result.list")
        cursor = result.get("nextPageCursor") or ""
        cursor = _text(cursor, "nextPageCursor")
    except ParseError as exc:
        return [], [BadFrame(str(exc), dump_raw(result))], ""
    good: list[Any] = []
    bad: list[BadFrame] = []
    for row in rows:
        try:
            good.append(parse(row, result))
        except ParseError as exc:
            bad.append(BadFrame(str(exc), dump_raw(row)))
    return good, bad, cursor


def parse_execution_page(result: Any, category: str = "linear") -> ExecutionPage:
    """The `result` of `/v5/execution/list`; category comes from the result, else from the request."""
    def one(row: Any, res: dict[str, Any]) -> Execution:
        cat = res.get("category") if isinstance(res.get("category"), str) and res.get("category") else category
        return parse_execution(row, cat)

    good, bad, cursor = _rows(result, one)
    return ExecutionPage(tuple(good), tuple(bad), cursor)


def parse_execution_rows(rows: Any, category: str = "linear") -> tuple[list[Execution], list[BadFrame]]:
    """A bare list of REST execution rows (the reconciler's `ingest:executions` stream entries)."""
    if not isinstance(rows, list):
        return [], [BadFrame("executions is not a list", dump_raw(rows))]
    good: list[Execution] = []
    bad: list[BadFrame] = []
    for row in rows:
        try:
            good.append(parse_execution(row, category))
        except ParseError as exc:
            bad.append(BadFrame(str(exc), dump_raw(row)))
    return good, bad


def parse_order_page(result: Any, category: str = "linear") -> tuple[list[OrderUpdate], list[BadFrame], str]:
    return _rows(result, lambda row, res: parse_order(row, res.get("category") or category))


def parse_position_page(result: Any, category: str = "linear") -> tuple[list[PositionSnapshot], list[BadFrame], str]:
    return _rows(result, lambda row, res: parse_position(row, res.get("category") or category))


def parse_wallet_result(result: Any, ts: datetime | None = None) -> tuple[list[WalletSnapshot], list[BadFrame]]:
    good, bad, _ = _rows(result, lambda row, res: parse_wallet(row, ts))
    return good, bad


def parse_instrument_page(result: Any) -> tuple[list[Instrument], list[BadFrame], str]:
    return _rows(result, lambda row, res: parse_instrument(row))


def parse_kline_result(result: Any) -> tuple[list[Kline], list[BadFrame]]:
    """`/v5/market/kline` result; the interval is not echoed by Bybit, so it is left as given in the call."""
    try:
        result = _as_dict(result, "result")
        symbol = _req_text(result, "symbol")
    except ParseError as exc:
        return [], [BadFrame(str(exc), dump_raw(result))]
    good, bad, _ = _rows(result, lambda row, res: parse_rest_kline(row, symbol, ""))
    return good, bad


# ---- the frame classifier ----------------------------------------------------------------------

def _envelope_time(frame: dict[str, Any], key: str) -> datetime | None:
    try:
        return _opt_time(frame, key)
    except ParseError:
        return None


def _each(rows: list[Any], parse: Any) -> ParsedFrame:
    out: ParsedFrame = []
    for row in rows:
        try:
            out.append(parse(row))
        except ParseError as exc:
            out.append(BadFrame(str(exc), dump_raw(row)))
    return out


def _classify_topic(frame: dict[str, Any]) -> ParsedFrame:
    topic = _text(frame["topic"], "topic", allow_empty=False)
    head, _, rest = topic.partition(".")
    data = frame.get("data")
    if head in PRIVATE_TOPICS or topic == "execution.fast":
        rows = _as_list(data, "data")
        category = rest if rest and rest != "fast" else None
        ts = _envelope_time(frame, "creationTime")
        if topic == "execution.fast":
            return _each(rows, lambda r: parse_fast_execution(r, category))
        parser = {
            "execution": lambda r: parse_execution(r, category),
            "order": lambda r: parse_order(r, category),
            "position": lambda r: parse_position(r, category),
            "wallet": lambda r: parse_wallet(r, ts),
        }[head]
        return _each(rows, parser)
    if head == "kline":
        interval, _, symbol = rest.partition(".")
        if not interval or not symbol:
            raise ParseError("kline topic without interval and symbol")
        return _each(_as_list(data, "data"), lambda r: parse_ws_kline(r, symbol))
    if head == "tickers":
        ts = _envelope_time(frame, "ts")
        return _each([data], lambda r: parse_ticker(r, ts))
    if head == "publicTrade":
        return _each(_as_list(data, "data"), parse_public_trade)
    raise ParseError(f"unknown topic {topic[:64]}")


def _classify_op(frame: dict[str, Any]) -> ParsedFrame:
    op = frame["op"]
    ret_msg = frame.get("ret_msg", frame.get("retMsg", ""))
    ret_msg = _text(ret_msg if isinstance(ret_msg, str) else "", "ret_msg")
    conn_id = _opt_text(frame, "conn_id") or _opt_text(frame, "connId")
    req_id = _opt_text(frame, "req_id")
    success = frame.get("success")
    if op == "pong" or (op == "ping" and ret_msg == "pong"):
        return [Pong(req_id=req_id, conn_id=conn_id)]
    if not isinstance(success, bool):
        raise ParseError(f"op {str(op)[:32]} without boolean success")
    if op == "auth":
        ret_code = frame.get("retCode")
        code = _int(ret_code, "retCode") if ret_code is not None else None
        return [AuthResult(success=success, ret_code=code, ret_msg=ret_msg, conn_id=conn_id)]
    if op in ("subscribe", "unsubscribe"):
        return [SubscribeResult(success=success, ret_msg=ret_msg, req_id=req_id, conn_id=conn_id)]
    raise ParseError(f"unknown op {str(op)[:32]}")


# Strict JSON; JSON floats become exact Decimals. About three times faster than the json module.
_EXACT_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(text: str | bytes) -> Any:
    """JSON text -> Python values, JSON floats as exact Decimals (pure). What strict JSON refuses but the
    json module reads (NaN, Infinity, lone surrogates) is read by the json module, so callers can judge it
    value by value. Raises ValueError or RecursionError when neither reads it."""
    try:
        return _EXACT_DECODER.decode(text)
    except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
        return json.loads(text, parse_float=Decimal)


def classify_frame(raw: str | bytes) -> ParsedFrame | BadFrame:
    """Any incoming WebSocket frame -> its records (a BadFrame per bad row), or one BadFrame. Never raises."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else raw
    if not isinstance(text, str):
        return BadFrame("frame is not text", dump_raw(raw))
    try:
        frame = decode_json(text)
    except (ValueError, RecursionError):
        return BadFrame("malformed JSON", text)
    try:
        if not isinstance(frame, dict):
            raise ParseError("frame is not an object")
        if "topic" in frame:
            return _classify_topic(frame)
        if "op" in frame:
            return _classify_op(frame)
        raise ParseError("frame has neither topic nor op")
    except (ParseError, RecursionError) as exc:
        return BadFrame(str(exc) or "unparseable frame", text)
