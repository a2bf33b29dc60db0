"""Private push rows as JSON text, byte for byte what `json.dumps` of render.py's row dicts gives with
the compact separators (pure).

Every generated fill pushes an execution row and an order row (plus position and wallet rows per
batch); building a dict per row and having the encoder escape every key again was the larger part of
the venue's CPU per fill. Here the constant keys sit in the templates and only values are formatted.
render.py's dict renderers stay the readable definition (and serve REST);
tests/unit/bybit_sim/test_venue_frames.py holds these to `json.dumps` of them.
"""
from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from services.bybit_sim.engine import MMR, Engine
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.models import ZERO, SimAccount, SimExecution, Order, SimPosition
from services.bybit_sim.render import num, wallet_figures

_s = encode_basestring_ascii  # json.dumps' own (C) string escaper, ensure_ascii as dumps defaults to
dumps = json.JSONEncoder(separators=(",", ":")).encode  # compact, as Bybit sends
RATE_STEP = Decimal("0.0001")
_price = {s: inst.price_str for s, inst in INSTRUMENTS.items()}
_qty = {s: inst.qty_str for s, inst in INSTRUMENTS.items()}


def _json(v: Any) -> str:
    """A non-string scalar as json.dumps writes it (bools and ints as they come from the engine)."""
    if type(v) is int:
        return str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    return dumps(v)


def execution_ws_json(e: SimExecution) -> str:
    price, qty = _price[e.symbol], _qty[e.symbol]
    mark = price(e.mark_price)
    return (
        f'{{"category":"linear","symbol":{_s(e.symbol)},"closedSize":"{qty(e.closed_size)}",'
        f'"execFee":"{num(e.exec_fee)}","execId":{_s(e.exec_id)},"execPrice":"{price(e.exec_price)}",'
        f'"execQty":"{qty(e.exec_qty)}","execType":{_s(e.exec_type)},"execValue":"{num(e.exec_value)}",'
        f'"feeRate":"{num(e.fee_rate)}","tradeIv":"","markIv":"","blockTradeId":"",'
        f'"markPrice":"{mark}","indexPrice":"{mark}","underlyingPrice":"","leavesQty":"{qty(e.leaves_qty)}",'
        f'"orderId":{_s(e.order_id)},"orderLinkId":{_s(e.order_link_id)},'
        f'"orderPrice":"{price(e.order_price) if e.order_price else "0"}","orderQty":"{qty(e.order_qty)}",'
        f'"orderType":{_s(e.order_type)},"stopOrderType":{_s(e.stop_order_type)},"side":{_s(e.side)},'
        f'"execTime":"{e.exec_time_ms}","isMaker":{_json(e.is_maker)},"seq":{_json(e.seq)},'
        f'"feeCurrency":"USDT","execPnl":"{num(e.exec_pnl)}","isLeverage":"0"}}'
    )


def order_ws_json(o: Order) -> str:
    price_str, qty = _price[o.symbol], _qty[o.symbol]
    price = o.price if o.order_type == "Limit" else ZERO
    return (
        f'{{"category":"linear","orderId":{_s(o.order_id)},"orderLinkId":{_s(o.order_link_id)},'
        f'"blockTradeId":"","symbol":{_s(o.symbol)},"price":"{price_str(price) if price else "0"}",'
        f'"qty":"{qty(o.qty)}","side":{_s(o.side)},"positionIdx":0,"orderStatus":{_s(o.status)},'
        f'"cancelType":{_s(o.cancel_type)},"rejectReason":{_s(o.reject_reason)},'
        f'"avgPrice":"{num(o.avg_price) if o.cum_qty else ""}","leavesQty":"{qty(o.leaves_qty)}",'
        f'"leavesValue":"{num(o.leaves_qty * price)}","cumExecQty":"{qty(o.cum_qty)}",'
        f'"cumExecValue":"{num(o.cum_value)}","cumExecFee":"{num(o.cum_fee)}",'
        f'"timeInForce":{_s(o.time_in_force)},"orderType":{_s(o.order_type)},'
        f'"stopOrderType":{_s(o.stop_order_type)},"orderIv":"",'
        f'"triggerPrice":"{price_str(o.trigger_price) if o.trigger_price else "0"}",'
        f'"takeProfit":"{num(o.take_profit)}","stopLoss":"{num(o.stop_loss)}",'
        f'"tpTriggerBy":{_s(o.tp_trigger_by)},"slTriggerBy":{_s(o.sl_trigger_by)},'
        f'"triggerDirection":{_json(o.trigger_direction)},"triggerBy":{_s(o.trigger_by)},'
        f'"lastPriceOnCreated":"{price_str(o.last_price_on_created)}","reduceOnly":{_json(o.reduce_only)},'
        f'"closeOnTrigger":{_json(o.close_on_trigger)},"smpType":"None","smpGroup":0,"smpOrderId":"",'
        f'"tpslMode":{_s(o.tpsl_mode)},"tpLimitPrice":"0",'
        f'"slLimitPrice":"0","placeType":"","createdTime":"{o.created_ms}","updatedTime":"{o.updated_ms}",'
        f'"feeCurrency":"USDT","createType":{_s(o.create_type)}}}'
    )


def position_ws_json(engine: Engine, pos: SimPosition) -> str:
    inst = INSTRUMENTS[pos.symbol]
    price, qty = _price[pos.symbol], _qty[pos.symbol]
    value = abs(pos.size) * pos.avg_price
    liq = engine.liq_price(pos, inst)
    im = num(value / pos.leverage)
    mm = num(value * MMR)
    return (
        f'{{"positionIdx":0,"tradeMode":0,"riskId":1,"riskLimitValue":"2000000","symbol":{_s(pos.symbol)},'
        f'"side":{_s(pos.side)},"size":"{qty(abs(pos.size))}","positionValue":"{num(value)}",'
        f'"positionBalance":"{im}","leverage":"{num(pos.leverage)}",'
        f'"markPrice":"{price(engine.price_of(pos.symbol))}","liqPrice":"{price(liq) if liq is not None else ""}",'
        f'"bustPrice":"","positionIM":"{im}","positionMM":"{mm}",'
        f'"takeProfit":"{price(pos.take_profit) if pos.take_profit else "0"}",'
        f'"stopLoss":"{price(pos.stop_loss) if pos.stop_loss else "0"}",'
        f'"trailingStop":"{price(pos.trailing_stop) if pos.trailing_stop else "0"}",'
        f'"unrealisedPnl":"{num(engine.unrealised(pos))}",'
        f'"curRealisedPnl":"{num(pos.cur_realised)}","cumRealisedPnl":"{num(pos.cum_realised)}",'
        f'"createdTime":"{pos.created_ms}","updatedTime":"{pos.updated_ms}","tpslMode":"Full",'
        f'"positionStatus":"Normal","adlRankIndicator":{2 if pos.size else 0},"autoAddMargin":0,'
        f'"leverageSysUpdatedTime":"","mmrSysUpdatedTime":"","seq":{_json(pos.seq)},"isReduceOnly":false,'
        f'"entryPrice":"{num(pos.avg_price) if pos.size else "0"}","sessionAvgPrice":"",'
        f'"positionIMByMp":"{im}","positionMMByMp":"{mm}","category":"linear"}}'
    )


def wallet_ws_json(engine: Engine, acct: SimAccount) -> str:
    f = wallet_figures(engine, acct)
    im = f["pos_im"] + f["order_im"]
    equity = num(f["equity"])
    balance = num(acct.balance)
    available = num(f["available"])
    upl = num(f["upl"])
    pos_im, pos_mm, order_im = num(f["pos_im"]), num(f["pos_mm"]), num(f["order_im"])
    positive = f["equity"] > 0
    im_rate = num((im / f["equity"]).quantize(RATE_STEP)) if positive else "0"
    mm_rate = num((f["pos_mm"] / f["equity"]).quantize(RATE_STEP)) if positive else "0"
    return (
        f'{{"accountType":"UNIFIED","accountIMRate":"{im_rate}","accountMMRate":"{mm_rate}","accountLTV":"0",'
        f'"totalEquity":"{equity}","totalWalletBalance":"{balance}","totalMarginBalance":"{equity}",'
        f'"totalAvailableBalance":"{available}","totalPerpUPL":"{upl}","totalInitialMargin":"{num(im)}",'
        f'"totalMaintenanceMargin":"{pos_mm}","coin":[{{"coin":"USDT","equity":"{equity}","usdValue":"{equity}",'
        f'"walletBalance":"{balance}","availableToWithdraw":"{available}","availableToBorrow":"",'
        f'"borrowAmount":"0","accruedInterest":"0","totalOrderIM":"{order_im}","totalPositionIM":"{pos_im}",'
        f'"totalPositionMM":"{pos_mm}","unrealisedPnl":"{upl}","cumRealisedPnl":"{num(acct.cum_realised)}",'
        f'"bonus":"0","locked":"0","collateralSwitch":true,"marginCollateral":true,"spotBorrow":"0"}}],'
        f'"totalPerpUpl":"{upl}"}}'
    )


def private_frame(frame_id: str, topic: str, creation_ms: int, rows: list[str]) -> str:
    """`{"id","topic","creationTime","data"}` around rows that are already JSON text."""
    return f'{{"id":{_s(frame_id)},"topic":{_s(topic)},"creationTime":{_json(creation_ms)},"data":[{",".join(rows)}]}}'
