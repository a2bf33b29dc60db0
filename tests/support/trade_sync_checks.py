"""Comparisons the trade_sync tests and benchmark make: the venue's history against trading.fills."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from shared.bybit.parse_rows import parse_execution

FIELDS = ("bot_id", "symbol", "order_id", "client_order_id", "side", "exec_type", "exec_price", "exec_qty",
          "exec_value", "exec_time", "commission", "fee_rate", "fee_currency", "is_maker", "closed_size",
          "exec_pnl", "order_type", "order_price", "order_qty", "leaves_qty", "mark_price", "stop_order_type",
          "seq")


def expected_row(bot_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What trading.fills must hold for one REST execution row of this bot."""
    e = parse_execution(raw, "linear")
    return {"bot_id": bot_id, "symbol": e.symbol, "order_id": e.order_id, "client_order_id": e.order_link_id or None,
            "side": e.side, "exec_type": e.exec_type, "exec_price": e.exec_price, "exec_qty": e.exec_qty,
            "exec_value": e.exec_value, "exec_time": e.exec_time, "commission": e.exec_fee, "fee_rate": e.fee_rate,
            "fee_currency": e.fee_currency, "is_maker": e.is_maker, "closed_size": e.closed_size,
            "exec_pnl": e.exec_pnl, "order_type": e.order_type, "order_price": e.order_price,
            "order_qty": e.order_qty, "leaves_qty": e.leaves_qty, "mark_price": e.mark_price,
            "stop_order_type": e.stop_order_type, "seq": e.seq}


def stored_rows(dsn: str, start: datetime | None = None, end: datetime | None = None) -> dict[str, dict[str, Any]]:
    """exec_id -> the row's fields, for fills with start <= exec_time < end."""
    sql = f"SELECT exec_id, {', '.join(FIELDS)} FROM trading.fills WHERE true"
    params: list[Any] = []
    if start is not None:
        sql += " AND exec_time >= %s"
        params.append(start)
    if end is not None:
        sql += " AND exec_time < %s"
        params.append(end)
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(sql, params)
        names = [d.name for d in cur.description or []]
        return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in cur.fetchall()}


def differences(expected: dict[str, dict[str, Any]], stored: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences, empty when the two sets are equal field by field."""
    out = [f"missing {x}" for x in sorted(set(expected) - set(stored))[:20]]
    out += [f"unexpected {x}" for x in sorted(set(stored) - set(expected))[:20]]
    for exec_id in sorted(set(expected) & set(stored)):
        for f in FIELDS:
            a, b = expected[exec_id][f], stored[exec_id][f]
            same = (a == b) if not isinstance(a, Decimal) or b is None else (b is not None and Decimal(b) == a)
            if not same:
                out.append(f"{exec_id}.{f}: venue {a!r} != stored {b!r}")
                if len(out) > 40:
                    return out
    return out
