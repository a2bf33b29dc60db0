"""Bybit V5 row and REST-result parsers: one raw row -> one record (raise ParseError); a REST result
-> its records and a BadFrame per bad row (never raise). Pure."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.bybit.records import (
    BadFrame,
    CoinBalance,
    Execution,
    ExecutionPage,
    FastExecution,
    Instrument,
    Kline,
    OrderUpdate,
    ParseError,
    PositionSnapshot,
    PublicTrade,
    Ticker,
    WalletSnapshot,
)
from shared.bybit.fields import (
    _as_dict,
    _as_list,
    _category,
    _decimal,
    _get,
    _int,
    _opt_bool,
    _opt_dec,
    _opt_int,
    _opt_text,
    _opt_time,
    _req_dec,
    _req_text,
    _req_time,
    _side,
    _text,
    dump_raw,
    ms_to_datetime,
)

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
