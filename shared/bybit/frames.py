"""Bybit V5 WebSocket frame classification: any incoming frame -> its records (a BadFrame per bad row),
or one BadFrame. Pure; never raises."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.bybit.records import (
    AuthResult,
    BadFrame,
    PRIVATE_TOPICS,
    ParseError,
    ParsedFrame,
    Pong,
    SubscribeResult,
)
from shared.bybit.fields import (
    _as_list,
    _int,
    _opt_text,
    _opt_time,
    _text,
    decode_json,
    dump_raw,
)
from shared.bybit.parse_rows import (
    parse_execution,
    parse_fast_execution,
    parse_order,
    parse_position,
    parse_public_trade,
    parse_ticker,
    parse_wallet,
    parse_ws_kline,
)

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
