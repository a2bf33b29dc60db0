"""REST side: Bybit V5 paths, request signing checks, limits, envelopes and error codes."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from services.bybit_sim.engine import OrderRequest
from services.bybit_sim.instruments import INSTRUMENTS, SimInstrument
from services.bybit_sim.market import INTERVALS, wall_ms
from services.bybit_sim.models import SimAccount, VenueError
from services.bybit_sim.queries import Params, bad, list_executions, list_open_orders, list_order_history
from services.bybit_sim.render import instrument_row, position_rest, wallet_rest
from shared.bybit.auth import sign_rest, signatures_equal, timestamp_accepted

log = structlog.get_logger()

if TYPE_CHECKING:
    from services.bybit_sim.venue import Venue

LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Route:
    method: str
    group: str | None  # None: public market data; otherwise the signed endpoint's rate-limit group
    handler: Callable[..., Any]


def envelope(result: Any, ret_code: int = 0, ret_msg: str = "OK") -> dict[str, Any]:
    return {"retCode": ret_code, "retMsg": ret_msg, "result": result if result is not None else {},
            "retExtInfo": {}, "time": wall_ms()}


def error_response(err: VenueError, headers: dict[str, str] | None = None, status: int = 200) -> web.Response:
    return web.json_response(envelope({}, err.ret_code, err.ret_msg), headers=headers, status=status)


def market_time(venue: Venue, p: Params) -> dict[str, Any]:
    now_ns = wall_ms() * 1_000_000
    return {"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)}


def _symbol(p: Params, required: bool = True) -> str | None:
    symbol = p.str("symbol", required=required)
    if symbol is not None and symbol not in INSTRUMENTS:
        raise bad("params error: symbol invalid")
    return symbol


def market_kline(venue: Venue, p: Params) -> dict[str, Any]:
    category = p.str("category", default="linear")
    if category != "linear":
        raise bad("params error: category only support linear")
    symbol = _symbol(p)
    interval = p.str("interval", required=True)
    if interval not in INTERVALS:
        raise bad("params error: interval invalid")
    limit = p.int("limit", 200, 1, 1000)
    rows = venue.market.kline_rows(symbol, interval, p.int("start", lo=0), p.int("end", lo=0), limit)
    return {"category": "linear", "symbol": symbol, "list": rows}


def market_tickers(venue: Venue, p: Params) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p, required=False)
    symbols = [symbol] if symbol else list(INSTRUMENTS)
    return {"category": "linear", "list": [venue.market.ticker(s) for s in symbols]}


def market_instruments(venue: Venue, p: Params) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p, required=False)
    rows = [instrument_row(i) for s, i in INSTRUMENTS.items() if symbol in (None, s)]
    return {"list": rows, "nextPageCursor": ""}


def _qty(p: Params, inst: SimInstrument, order_type: str) -> Decimal:
    qty = p.decimal("qty", required=True)
    if qty <= 0 or not inst.on_step(qty):
        raise bad("Qty invalid: must be a positive multiple of qtyStep")
    if qty < inst.min_qty:
        raise bad("The number of contracts exceeds minimum limit allowed")
    cap = inst.max_mkt_qty if order_type == "Market" else inst.max_qty
    if qty > cap:
        raise bad("The number of contracts exceeds maximum limit allowed")
    return qty


def order_create(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p)
    inst = INSTRUMENTS[symbol]
    side = p.str("side", required=True)
    if side not in ("Buy", "Sell"):
        raise bad("params error: side invalid")
    order_type = p.str("orderType", required=True)
    if order_type not in ("Market", "Limit"):
        raise bad("params error: orderType invalid")
    qty = _qty(p, inst, order_type)
    price = p.decimal("price")
    if order_type == "Limit":
        if price is None:
            raise bad("params error: price is required for Limit orders")
        if price <= 0 or not inst.on_tick(price) or not inst.min_price <= price <= inst.max_price:
            raise bad("params error: price invalid")
    else:
        price = None
    tif = p.str("timeInForce", default="GTC" if order_type == "Limit" else "IOC")
    if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
        raise bad("params error: timeInForce invalid")
    if p.int("positionIdx", 0) != 0:
        raise bad("position idx not match position mode")
    link_id = p.str("orderLinkId", default="")
    if link_id and not LINK_ID.match(link_id):
        raise bad("params error: orderLinkId invalid")
    take_profit, stop_loss = _level(p, "takeProfit", inst), _level(p, "stopLoss", inst)
    if p.str("tpslMode", default="Full") != "Full":
        raise bad("params error: tpslMode only support Full")
    for name in ("tpOrderType", "slOrderType"):
        if p.str(name, default="Market") != "Market":
            raise bad(f"params error: {name} only support Market")
    trigger_price = _level(p, "triggerPrice", inst)
    direction = p.int("triggerDirection", 0)
    if trigger_price and direction not in (1, 2):
        raise bad("params error: triggerDirection must be 1 (rise) or 2 (fall) with triggerPrice")
    req = OrderRequest(symbol, side, order_type, qty, price, tif, p.bool("reduceOnly"), link_id,
                       take_profit, stop_loss, _trigger_by(p, "tpTriggerBy") if take_profit else "",
                       _trigger_by(p, "slTriggerBy") if stop_loss else "", trigger_price, direction if trigger_price else 0,
                       _trigger_by(p, "triggerBy") if trigger_price else "", p.bool("closeOnTrigger"))
    order = venue.create_order(acct.api_key, req)
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def _level(p: Params, name: str, inst: SimInstrument) -> Decimal:
    """A price parameter where 0 (or absent) means none; otherwise positive and on the tick."""
    value = p.decimal(name)
    if value is None or value == 0:
        return Decimal(0)
    if value < 0 or not inst.on_tick(value) or value > inst.max_price:
        raise bad(f"params error: {name} invalid")
    return value


def _trigger_by(p: Params, name: str) -> str:
    """Last, mark and index price are one price on this venue; each is accepted and echoed."""
    value = p.str(name, default="LastPrice")
    if value not in ("LastPrice", "MarkPrice", "IndexPrice"):
        raise bad(f"params error: {name} invalid")
    return value


def trading_stop(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    """`POST /v5/position/trading-stop`, Full mode: takeProfit, stopLoss, trailingStop (+ activePrice)."""
    p.linear()
    symbol = _symbol(p)
    inst = INSTRUMENTS[symbol]
    if p.str("tpslMode", required=True) != "Full":
        raise bad("params error: tpslMode only support Full")
    p.str("positionIdx", required=True)
    if p.int("positionIdx") != 0:
        raise bad("position idx not match position mode")
    for name in ("tpOrderType", "slOrderType"):
        if p.str(name, default="Market") != "Market":
            raise bad(f"params error: {name} only support Market")
    if p.str("tpSize") or p.str("slSize"):
        raise bad("params error: tpSize and slSize are for tpslMode Partial")

    def given(name: str) -> Decimal | None:
        return None if p.str(name) is None else _level(p, name, inst)

    venue.advance()
    events = venue.engine.stops.set_trading_stop(
        acct.api_key, symbol, given("takeProfit"), given("stopLoss"), given("trailingStop"), given("activePrice"),
        _trigger_by(p, "tpTriggerBy") if p.str("tpTriggerBy") else "",
        _trigger_by(p, "slTriggerBy") if p.str("slTriggerBy") else "", venue.stamp_ms())
    venue.publish(venue.run_engine(events))
    return {}


def order_cancel(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p)
    order_id, link_id = p.str("orderId"), p.str("orderLinkId")
    if not order_id and not link_id:
        raise bad("params error: orderId or orderLinkId is required")
    venue.advance()
    order, events = venue.engine.cancel_order(acct.api_key, symbol, order_id, link_id, venue.stamp_ms())
    venue.publish(venue.run_engine(events))
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def order_cancel_all(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p, required=False)
    if symbol is None and not (p.str("settleCoin") or p.str("baseCoin")):
        raise bad("params error: symbol, baseCoin or settleCoin is required")
    order_filter = p.str("orderFilter")
    if order_filter not in (None, "Order", "StopOrder"):
        raise bad("params error: orderFilter invalid")
    venue.advance()
    orders, events = venue.engine.cancel_all(acct.api_key, symbol, venue.stamp_ms(), order_filter)
    venue.publish(venue.run_engine(events))
    return {"list": [{"orderId": o.order_id, "orderLinkId": o.order_link_id} for o in orders], "success": "1"}


def order_realtime(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    return list_open_orders(acct, p)


def order_history(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    return list_order_history(acct, p, venue.stamp_ms())


def execution_list(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    return list_executions(acct, p, venue.stamp_ms())


def position_list(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p, required=False)
    settle = p.str("settleCoin")
    if symbol is None and settle is None:
        raise bad("params error: symbol or settleCoin is required")
    if settle is not None and settle != "USDT":
        raise bad("params error: settleCoin invalid")
    p.int("limit", 20, 1, 200)
    if symbol is not None:
        positions = [acct.position(symbol)]
    else:
        positions = [pos for s, pos in sorted(acct.positions.items()) if pos.size != 0]
    return {"list": [position_rest(venue.engine, pos) for pos in positions], "nextPageCursor": "",
            "category": "linear"}


def set_leverage(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    p.linear()
    symbol = _symbol(p)
    buy, sell = p.decimal("buyLeverage", required=True), p.decimal("sellLeverage", required=True)
    if buy != sell:
        raise bad("buy leverage must equal sell leverage in one-way mode")
    events = venue.engine.set_leverage(acct.api_key, symbol, buy, venue.stamp_ms())
    venue.publish(venue.run_engine(events))
    return {}


def wallet_balance(venue: Venue, p: Params, acct: SimAccount) -> dict[str, Any]:
    account_type = p.str("accountType", required=True)
    if account_type != "UNIFIED":
        raise bad("accountType only support UNIFIED")
    coin = p.str("coin")
    row = wallet_rest(venue.engine, acct)
    if coin is not None:
        row["coin"] = [c for c in row["coin"] if c["coin"] in coin.split(",")]
    return {"list": [row]}


ROUTES: dict[str, Route] = {
    "/v5/market/time": Route("GET", None, market_time),
    "/v5/market/kline": Route("GET", None, market_kline),
    "/v5/market/tickers": Route("GET", None, market_tickers),
    "/v5/market/instruments-info": Route("GET", None, market_instruments),
    "/v5/order/create": Route("POST", "order", order_create),
    "/v5/order/cancel": Route("POST", "order", order_cancel),
    "/v5/order/cancel-all": Route("POST", "order", order_cancel_all),
    "/v5/order/realtime": Route("GET", "query", order_realtime),
    "/v5/order/history": Route("GET", "query", order_history),
    "/v5/execution/list": Route("GET", "query", execution_list),
    "/v5/position/list": Route("GET", "query", position_list),
    "/v5/position/set-leverage": Route("POST", "leverage", set_leverage),
    "/v5/position/trading-stop": Route("POST", "leverage", trading_stop),
    "/v5/account/wallet-balance": Route("GET", "query", wallet_balance),
}


def authenticate(venue: Venue, request: web.Request, payload: str) -> SimAccount:
    """Bybit's header scheme: HMAC over timestamp + key + recv_window + raw query string or raw body."""
    h = request.headers
    api_key = h.get("X-BAPI-API-KEY", "")
    acct = venue.engine.accounts.get(api_key)
    now = wall_ms()
    if acct is None or venue.faults.active("reject_auth", api_key, now):
        raise VenueError(10003, "API key is invalid.")
    try:
        timestamp = int(h.get("X-BAPI-TIMESTAMP", ""))
        recv_window = int(h.get("X-BAPI-RECV-WINDOW", "5000"))
    except ValueError:
        raise VenueError(10002, "invalid request, please check your timestamp and recv_window param") from None
    if not timestamp_accepted(now, timestamp, recv_window):
        raise VenueError(10002, f"invalid request, please check your server timestamp or recv_window param. "
                                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{recv_window}]")
    expected = sign_rest(acct.secret, timestamp, api_key, recv_window, payload)
    if not signatures_equal(expected, h.get("X-BAPI-SIGN", "")):
        raise VenueError(10004, "error sign! origin_string[...]")
    return acct


def _limit_headers(limit: int, remaining: int, reset_ms: int) -> dict[str, str]:
    return {"X-Bapi-Limit": str(limit), "X-Bapi-Limit-Status": str(remaining),
            "X-Bapi-Limit-Reset-Timestamp": str(reset_ms)}


async def serve_rest(request: web.Request, venue: Venue) -> web.StreamResponse:
    route = ROUTES.get(request.path)
    if route is None:
        return web.json_response({"retCode": 404, "retMsg": "Not Found"}, status=404)
    if request.method != route.method:
        return web.json_response({"retCode": 10001, "retMsg": f"{request.method} not allowed"}, status=405)
    now = wall_ms()
    ip = request.remote or ""
    verdict = venue.limits.hit_ip(ip, now)
    if not verdict.allowed:
        return web.Response(status=403, text="403 Forbidden: access too frequent")
    try:
        raw = await request.read() if request.method == "POST" else b""
    except web.HTTPRequestEntityTooLarge:
        return error_response(VenueError(10001, "request body too large"), status=413)
    api_key = request.headers.get("X-BAPI-API-KEY")
    http_fault = venue.faults.active("http_5xx", api_key, now)
    if http_fault:
        return web.Response(status=http_fault.status, text=f"{http_fault.status} simulated server error")
    headers: dict[str, str] = {}
    try:
        if route.group is None:
            params = Params(request.rel_url.query)
            return web.json_response(envelope(route.handler(venue, params)))
        if request.method == "GET":
            payload = request.rel_url.raw_query_string
        else:
            try:
                payload = raw.decode()
            except UnicodeDecodeError:
                raise VenueError(10001, "request body is not utf-8") from None
        acct = authenticate(venue, request, payload)
        limited = venue.faults.active("rate_limit", acct.api_key, now)
        if limited:
            headers = _limit_headers(venue.limits.groups[route.group].limit, 0, limited.until_ms)
            raise VenueError(10006, "Too many visits!")
        if request.method == "POST" and venue.stepper is not None:
            venue.stepper.activity(now)
        v = venue.limits.hit_account(route.group, acct.api_key, request.path, now)
        headers = _limit_headers(v.limit, v.remaining, v.reset_ms)
        if not v.allowed:
            raise VenueError(10006, "Too many visits!")
        if request.method == "GET":
            params = Params(request.rel_url.query)
        else:
            try:
                body = json.loads(payload) if payload.strip() else {}
            except ValueError:
                raise VenueError(10001, "params error: request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise VenueError(10001, "params error: request body must be a JSON object")
            params = Params(body)
        result = route.handler(venue, params, acct)
        return web.json_response(envelope(result), headers=headers)
    except VenueError as err:
        return error_response(err, headers)
    except Exception as exc:  # a venue bug must look like Bybit's server error, not kill the request loop
        log.error("rest_internal_error", path=request.path, error=repr(exc))
        return error_response(VenueError(10016, "Internal system error."), headers)
