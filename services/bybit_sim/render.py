"""Venue records -> Bybit V5 JSON rows, with the field names of the recorded samples (pure)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.bybit_sim.candles import Ohlcv
from services.bybit_sim.engine import MMR, Engine
from services.bybit_sim.instruments import INSTRUMENTS, SimInstrument
from services.bybit_sim.models import ZERO, SimAccount, SimExecution, Order, SimPosition
from services.bybit_sim.stops import CREATE_TYPES


def num(d: Decimal) -> str:
    """Decimal as Bybit writes numbers: a plain string, no exponent, no trailing zeros.

    That is `format(d.normalize(), "f")`; a plain `str(d)` with a fraction and too few digits for
    normalize() to round (precision 28) only needs its trailing zeros cut, at half the cost."""
    if not d:
        return "0"
    s = str(d)
    if "." in s and "E" not in s and len(s) <= 28:
        s = s.rstrip("0")
        return s[:-1] if s[-1] == "." else s
    return format(d.normalize(), "f")


def _execution_common(e: SimExecution) -> dict[str, Any]:
    inst = INSTRUMENTS[e.symbol]
    return {
        "symbol": e.symbol,
        "closedSize": inst.qty_str(e.closed_size),
        "execFee": num(e.exec_fee),
        "execId": e.exec_id,
        "execPrice": inst.price_str(e.exec_price),
        "execQty": inst.qty_str(e.exec_qty),
        "execType": e.exec_type,
        "execValue": num(e.exec_value),
        "feeRate": num(e.fee_rate),
        "tradeIv": "",
        "markIv": "",
        "blockTradeId": "",
        "markPrice": inst.price_str(e.mark_price),
        "indexPrice": inst.price_str(e.mark_price),
        "underlyingPrice": "",
        "leavesQty": inst.qty_str(e.leaves_qty),
        "orderId": e.order_id,
        "orderLinkId": e.order_link_id,
        "orderPrice": inst.price_str(e.order_price) if e.order_price else "0",
        "orderQty": inst.qty_str(e.order_qty),
        "orderType": e.order_type,
        "stopOrderType": e.stop_order_type,
        "side": e.side,
        "execTime": str(e.exec_time_ms),
        "isMaker": e.is_maker,
        "seq": e.seq,
        "feeCurrency": "USDT",
        "execPnl": num(e.exec_pnl),
    }


def execution_ws(e: SimExecution) -> dict[str, Any]:
    row = {"category": "linear", **_execution_common(e)}
    row["isLeverage"] = "0"
    return row


def execution_rest(e: SimExecution) -> dict[str, Any]:
    row = _execution_common(e)
    if e.exec_type == "Trade":
        row["createType"] = CREATE_TYPES.get(e.stop_order_type, "CreateByUser")
    return row


def _order_common(o: Order) -> dict[str, Any]:
    inst = INSTRUMENTS[o.symbol]
    price = o.price if o.order_type == "Limit" else ZERO
    return {
        "orderId": o.order_id,
        "orderLinkId": o.order_link_id,
        "blockTradeId": "",
        "symbol": o.symbol,
        "price": inst.price_str(price) if price else "0",
        "qty": inst.qty_str(o.qty),
        "side": o.side,
        "positionIdx": 0,
        "orderStatus": o.status,
        "cancelType": o.cancel_type,
        "rejectReason": o.reject_reason,
        "avgPrice": num(o.avg_price) if o.cum_qty else "",
        "leavesQty": inst.qty_str(o.leaves_qty),
        "leavesValue": num(o.leaves_qty * price),
        "cumExecQty": inst.qty_str(o.cum_qty),
        "cumExecValue": num(o.cum_value),
        "cumExecFee": num(o.cum_fee),
        "timeInForce": o.time_in_force,
        "orderType": o.order_type,
        "stopOrderType": o.stop_order_type,
        "orderIv": "",
        "triggerPrice": inst.price_str(o.trigger_price) if o.trigger_price else "0",
        "takeProfit": num(o.take_profit),
        "stopLoss": num(o.stop_loss),
        "tpTriggerBy": o.tp_trigger_by,
        "slTriggerBy": o.sl_trigger_by,
        "triggerDirection": o.trigger_direction,
        "triggerBy": o.trigger_by,
        "lastPriceOnCreated": inst.price_str(o.last_price_on_created),
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": o.close_on_trigger,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": o.tpsl_mode,
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "placeType": "",
        "createdTime": str(o.created_ms),
        "updatedTime": str(o.updated_ms),
    }


def order_rest(o: Order) -> dict[str, Any]:
    return {**_order_common(o), "isLeverage": ""}


def order_ws(o: Order) -> dict[str, Any]:
    row = {"category": "linear", **_order_common(o)}
    row["feeCurrency"] = "USDT"
    row["createType"] = o.create_type
    return row


def _position_common(engine: Engine, pos: SimPosition) -> dict[str, Any]:
    inst = INSTRUMENTS[pos.symbol]
    mark = engine.price_of(pos.symbol)
    value = abs(pos.size) * pos.avg_price
    liq = engine.liq_price(pos, inst)
    return {
        "positionIdx": 0,
        "tradeMode": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": pos.symbol,
        "side": pos.side,
        "size": inst.qty_str(abs(pos.size)),
        "positionValue": num(value),
        "positionBalance": num(value / pos.leverage),
        "leverage": num(pos.leverage),
        "markPrice": inst.price_str(mark),
        "liqPrice": inst.price_str(liq) if liq is not None else "",
        "bustPrice": "",
        "positionIM": num(value / pos.leverage),
        "positionMM": num(value * MMR),
        "takeProfit": inst.price_str(pos.take_profit) if pos.take_profit else "0",
        "stopLoss": inst.price_str(pos.stop_loss) if pos.stop_loss else "0",
        "trailingStop": inst.price_str(pos.trailing_stop) if pos.trailing_stop else "0",
        "unrealisedPnl": num(engine.unrealised(pos)),
        "curRealisedPnl": num(pos.cur_realised),
        "cumRealisedPnl": num(pos.cum_realised),
        "createdTime": str(pos.created_ms),
        "updatedTime": str(pos.updated_ms),
        "tpslMode": "Full",
        "positionStatus": "Normal",
        "adlRankIndicator": 2 if pos.size else 0,
        "autoAddMargin": 0,
        "leverageSysUpdatedTime": "",
        "mmrSysUpdatedTime": "",
        "seq": pos.seq,
        "isReduceOnly": False,
    }


def position_rest(engine: Engine, pos: SimPosition) -> dict[str, Any]:
    row = _position_common(engine, pos)
    row["avgPrice"] = INSTRUMENTS[pos.symbol].price_str(pos.avg_price) if pos.size else "0"
    return row


def position_ws(engine: Engine, pos: SimPosition) -> dict[str, Any]:
    row = _position_common(engine, pos)
    row["entryPrice"] = num(pos.avg_price) if pos.size else "0"
    row["sessionAvgPrice"] = ""
    row["positionIMByMp"] = row["positionIM"]
    row["positionMMByMp"] = row["positionMM"]
    row["category"] = "linear"
    return row


def wallet_figures(engine: Engine, acct: SimAccount) -> dict[str, Decimal]:
    upl = sum((engine.unrealised(p) for p in acct.positions.values()), ZERO)
    pos_im = sum((engine.position_im(p) for p in acct.positions.values()), ZERO)
    pos_mm = sum((abs(p.size) * p.avg_price * MMR for p in acct.positions.values()), ZERO)
    order_im = engine.order_im(acct)
    equity = acct.balance + upl
    return {"upl": upl, "pos_im": pos_im, "pos_mm": pos_mm, "order_im": order_im, "equity": equity,
            "available": max(equity - pos_im - order_im, ZERO)}


def _wallet_coin(acct: SimAccount, f: dict[str, Decimal]) -> dict[str, Any]:
    return {
        "coin": "USDT",
        "equity": num(f["equity"]),
        "usdValue": num(f["equity"]),
        "walletBalance": num(acct.balance),
        "availableToWithdraw": num(f["available"]),
        "availableToBorrow": "",
        "borrowAmount": "0",
        "accruedInterest": "0",
        "totalOrderIM": num(f["order_im"]),
        "totalPositionIM": num(f["pos_im"]),
        "totalPositionMM": num(f["pos_mm"]),
        "unrealisedPnl": num(f["upl"]),
        "cumRealisedPnl": num(acct.cum_realised),
        "bonus": "0",
        "locked": "0",
        "collateralSwitch": True,
        "marginCollateral": True,
        "spotBorrow": "0",
    }


def _wallet_row(engine: Engine, acct: SimAccount) -> dict[str, Any]:
    f = wallet_figures(engine, acct)
    im = f["pos_im"] + f["order_im"]
    equity = f["equity"]
    return {
        "accountType": "UNIFIED",
        "accountIMRate": num((im / equity).quantize(Decimal("0.0001"))) if equity > 0 else "0",
        "accountMMRate": num((f["pos_mm"] / equity).quantize(Decimal("0.0001"))) if equity > 0 else "0",
        "accountLTV": "0",
        "totalEquity": num(equity),
        "totalWalletBalance": num(acct.balance),
        "totalMarginBalance": num(equity),
        "totalAvailableBalance": num(f["available"]),
        "totalPerpUPL": num(f["upl"]),
        "totalInitialMargin": num(im),
        "totalMaintenanceMargin": num(f["pos_mm"]),
        "coin": [_wallet_coin(acct, f)],
    }


def wallet_rest(engine: Engine, acct: SimAccount) -> dict[str, Any]:
    return _wallet_row(engine, acct)


def wallet_ws(engine: Engine, acct: SimAccount) -> dict[str, Any]:
    row = _wallet_row(engine, acct)
    row["totalPerpUpl"] = row["totalPerpUPL"]
    return row


def kline_rest_row(c: Ohlcv, inst: SimInstrument) -> list[str]:
    return [str(c.start_ms), inst.price_str(c.open), inst.price_str(c.high), inst.price_str(c.low),
            inst.price_str(c.close), num(c.volume), num(c.turnover)]


def kline_ws_row(c: Ohlcv, inst: SimInstrument, interval: str, end_ms: int, confirm: bool, ts_ms: int) -> dict[str, Any]:
    return {"start": c.start_ms, "end": end_ms, "interval": interval, "open": inst.price_str(c.open),
            "close": inst.price_str(c.close), "high": inst.price_str(c.high), "low": inst.price_str(c.low),
            "volume": num(c.volume), "turnover": num(c.turnover), "confirm": confirm, "timestamp": ts_ms}


def instrument_row(inst: SimInstrument) -> dict[str, Any]:
    return {
        "symbol": inst.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": inst.base_coin,
        "quoteCoin": "USDT",
        "launchTime": str(inst.launch_time_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(inst.price_scale),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": str(inst.max_leverage), "leverageStep": "0.01"},
        "priceFilter": {"minPrice": str(inst.min_price), "maxPrice": str(inst.max_price),
                        "tickSize": str(inst.tick_size)},
        "lotSizeFilter": {"maxOrderQty": str(inst.max_qty), "minOrderQty": str(inst.min_qty),
                          "qtyStep": str(inst.qty_step), "postOnlyMaxOrderQty": str(inst.max_qty),
                          "maxMktOrderQty": str(inst.max_mkt_qty), "minNotionalValue": "5"},
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
    }
