"""Pure conversions between the exchange / listener formats and the runtime's records (no IO, no clock).

- listener stream entries (`klines:{symbol}:{interval}`, `fills:{bot_id}`) -> `Bar`, `Fill`
- REST rows (`/v5/market/kline`, `/v5/position/list`, `/v5/order/realtime`) -> `Bar`, `Position`, `PlaceOrder`
- decisions -> REST request bodies
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared import contracts
from strategies.runtime.candles import INTERVAL_MS
from strategies.runtime.model import STOP_REASONS, ZERO, Bar, BotFill, Position
from strategies.runtime.orders import CancelAll, CancelOrder, Intent, PlaceOrder, SetLeverage, TradingStop, reason_of

CATEGORY = "linear"
# the runtime's interval names -> Bybit's (`/v5/market/kline`, `kline.{interval}.{symbol}`, the listener's streams)
BYBIT_INTERVAL: dict[str, str] = {"1m": "1", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "4h": "240", "1d": "D"}


class BadInput(ValueError):
    """A candle, fill or row that cannot be used; the message says which field and why."""


def bar_stream_key(symbol: str, interval: str) -> str:
    """The listener's candle stream (contracts.kline_stream_key, which takes Bybit's interval names) for a
    runtime interval name ("5m", "1h")."""
    return contracts.kline_stream_key(symbol, BYBIT_INTERVAL[interval])


def _dec(raw: Any, what: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise BadInput(f"{what}: {raw!r} is not a number") from None
    if not value.is_finite():
        raise BadInput(f"{what}: {raw!r} is not finite")
    return value


def make_bar(symbol: str, interval: str, start_ms: int, o: Any, h: Any, lo: Any, c: Any, v: Any) -> Bar:
    """A closed candle, checked as the backtester checks its files (a malformed one is refused)."""
    if interval not in INTERVAL_MS:
        raise BadInput(f"unknown interval {interval!r}")
    iv = INTERVAL_MS[interval]
    if start_ms % iv:
        raise BadInput(f"{symbol} {interval}: start {start_ms} is not on the interval")
    op, hi, low, cl, vol = (_dec(x, n) for x, n in ((o, "open"), (h, "high"), (lo, "low"), (c, "close"), (v, "volume")))
    if min(op, hi, low, cl) <= 0:
        raise BadInput(f"{symbol} {interval} {start_ms}: a price is not positive")
    if hi < max(op, cl) or low > min(op, cl) or vol < 0:
        raise BadInput(f"{symbol} {interval} {start_ms}: high/low do not contain open/close, or negative volume")
    return Bar(symbol, interval, start_ms, start_ms + iv, float(op), float(hi), float(low), float(cl), float(vol))


def bar_from_stream(symbol: str, interval: str, entry_id: str, fields: Mapping[str, str]) -> Bar:
    """A `klines:{symbol}:{interval}` entry (id `{start_ms}-0`)."""
    try:
        start_ms = int(fields["start"])
    except (KeyError, ValueError):
        raise BadInput(f"kline entry {entry_id}: no start") from None
    if entry_id.split("-")[0] != str(start_ms):
        raise BadInput(f"kline entry {entry_id}: id does not match start {start_ms}")
    if fields.get("symbol", symbol) != symbol or fields.get("interval", BYBIT_INTERVAL[interval]) != BYBIT_INTERVAL[interval]:
        raise BadInput(f"kline entry {entry_id}: for {fields.get('symbol')} {fields.get('interval')}")
    return make_bar(symbol, interval, start_ms, fields.get("open"), fields.get("high"), fields.get("low"),
                    fields.get("close"), fields.get("volume"))


def bars_from_rest(rows: Sequence[Sequence[Any]], symbol: str, interval: str, last_closed_start_ms: int) -> list[Bar]:
    """`/v5/market/kline` rows (newest first) -> closed bars oldest first, none after `last_closed_start_ms`."""
    out = []
    for row in rows:
        if len(row) < 6:
            raise BadInput(f"{symbol} kline row {row!r}: fewer than 6 items")
        start = int(row[0])
        if start <= last_closed_start_ms:
            out.append(make_bar(symbol, interval, start, row[1], row[2], row[3], row[4], row[5]))
    out.sort(key=lambda b: b.start_ms)
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso_ms(raw: str) -> int:
    """ISO 8601 UTC -> epoch ms, exactly (no float on the way)."""
    return (datetime.fromisoformat(raw.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def fill_from_stream(raw: str, bot_id: str) -> BotFill | None:
    """The `fill` field of a `fills:{bot_id}` entry (the fills_channel JSON); None for non-trades (funding)."""
    try:
        d = json.loads(raw)
    except ValueError:
        raise BadInput("fill entry is not JSON") from None
    if not isinstance(d, dict) or d.get("bot_id") != bot_id:
        raise BadInput(f"fill entry is not one of {bot_id}'s")
    if d.get("exec_type") != "Trade":
        return None
    link = d.get("client_order_id") or ""
    stop = d.get("stop_order_type") or ""
    reason = STOP_REASONS.get(stop) or reason_of(link, bot_id) or "manual"
    try:
        return BotFill(symbol=str(d["symbol"]), side=str(d["side"]), qty=_dec(d["exec_qty"], "exec_qty"),
                    price=_dec(d["exec_price"], "exec_price"), fee=_dec(d["commission"], "commission"),
                    time_ms=_iso_ms(str(d["exec_time"])), order_link_id=link, reason=reason,
                    is_maker=bool(d.get("is_maker")), exec_type="Trade", stop_order_type=stop)
    except KeyError as exc:
        raise BadInput(f"fill entry has no {exc.args[0]}") from None


def position_from_rest(row: Mapping[str, Any]) -> Position:
    """A `/v5/position/list` row (one-way mode); `opened_ms` is the exchange's createdTime."""
    size = _dec(row.get("size") or 0, "size")
    side = row.get("side") or ""
    qty = -size if side == "Sell" else size if side == "Buy" else ZERO

    def opt(key: str) -> Decimal:
        raw = row.get(key)
        return _dec(raw, key) if raw not in (None, "") else ZERO

    created = row.get("createdTime")
    return Position(symbol=str(row["symbol"]), qty=qty, avg_price=opt("avgPrice"),
                    opened_ms=int(created) if created not in (None, "") and qty else None,
                    stop_loss=opt("stopLoss"), take_profit=opt("takeProfit"), trailing_stop=opt("trailingStop"),
                    leverage=opt("leverage") or Decimal(10))


def order_from_rest(row: Mapping[str, Any], bot_id: str) -> PlaceOrder:
    """An open order (`/v5/order/realtime`) as the intent that made it (stops of positions included)."""
    link = str(row.get("orderLinkId") or "")
    price = row.get("price")
    return PlaceOrder(symbol=str(row["symbol"]), side=str(row["side"]), qty=_dec(row.get("qty") or 0, "qty"),
                      order_link_id=link, reason=STOP_REASONS.get(str(row.get("stopOrderType") or ""))
                      or reason_of(link, bot_id) or "manual",
                      order_type=str(row.get("orderType") or "Market"),
                      price=_dec(price, "price") if price not in (None, "", "0") else None,
                      reduce_only=bool(row.get("reduceOnly")), time_in_force=str(row.get("timeInForce") or "GTC"))


def _s(x: Decimal) -> str:
    return format(x, "f")


def request_for(intent: Intent) -> tuple[str, dict[str, Any]]:
    """The REST path and body of an intent."""
    if isinstance(intent, PlaceOrder):
        body: dict[str, Any] = {"category": CATEGORY, "symbol": intent.symbol, "side": intent.side,
                                "orderType": intent.order_type, "qty": _s(intent.qty), "positionIdx": 0,
                                "orderLinkId": intent.order_link_id,
                                "timeInForce": "IOC" if intent.order_type == "Market" else intent.time_in_force}
        if intent.price is not None:
            body["price"] = _s(intent.price)
        if intent.reduce_only:
            body["reduceOnly"] = True
        if intent.stop_loss or intent.take_profit:
            body["tpslMode"] = "Full"
            if intent.stop_loss:
                body["stopLoss"] = _s(intent.stop_loss)
            if intent.take_profit:
                body["takeProfit"] = _s(intent.take_profit)
        return "/v5/order/create", body
    if isinstance(intent, TradingStop):
        body = {"category": CATEGORY, "symbol": intent.symbol, "tpslMode": "Full", "positionIdx": 0}
        for key, value in (("stopLoss", intent.stop_loss), ("takeProfit", intent.take_profit),
                           ("trailingStop", intent.trailing_stop), ("activePrice", intent.active_price)):
            if value is not None:
                body[key] = _s(value)
        return "/v5/position/trading-stop", body
    if isinstance(intent, CancelOrder):
        return "/v5/order/cancel", {"category": CATEGORY, "symbol": intent.symbol, "orderLinkId": intent.order_link_id}
    if isinstance(intent, CancelAll):
        body = {"category": CATEGORY}
        body.update({"symbol": intent.symbol} if intent.symbol else {"settleCoin": "USDT"})
        return "/v5/order/cancel-all", body
    if isinstance(intent, SetLeverage):
        lev = _s(intent.leverage)
        return "/v5/position/set-leverage", {"category": CATEGORY, "symbol": intent.symbol,
                                             "buyLeverage": lev, "sellLeverage": lev}
    raise TypeError(f"unknown intent {intent!r}")
