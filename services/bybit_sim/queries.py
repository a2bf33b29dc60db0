"""Bybit's list-query rules (windows, limits, cursors) over the venue's records (pure)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from services.bybit_sim.models import SimAccount, VenueError
from services.bybit_sim.render import execution_rest, order_rest

WEEK_MS = 7 * 86_400_000
TWO_YEARS_MS = 2 * 365 * 86_400_000
_CURSOR = re.compile(r"^(\d+)_(\d+)$")


def bad(msg: str) -> VenueError:
    return VenueError(10001, msg)


class Params:
    """Typed access to request parameters; any malformed value is Bybit's 10001."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def str(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise bad(f"params error: {name} is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad(f"params error: {name} invalid")
        return str(value)

    def int(self, name: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
        text = self.str(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise bad(f"params error: {name} invalid") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad(f"params error: {name} out of range")
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        text = self.str(name, required=required)
        if text is None:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise bad(f"params error: {name} invalid") from None
        if not value.is_finite() or (value != 0 and not -20 <= value.adjusted() <= 20):
            raise bad(f"params error: {name} invalid")
        return value

    def bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if value in ("true", "True", "1", 1):
            return True
        if value in ("false", "False", "0", 0):
            return False
        raise bad(f"params error: {name} invalid")

    def linear(self) -> None:
        category = self.str("category", required=True)
        if category != "linear":
            raise bad("params error: category only support linear")


def time_window(p: Params, now_ms: int) -> tuple[int, int]:
    """Bybit's 7-day window: none given -> the last 7 days; one given -> 7 days from/to it."""
    start = p.int("startTime", lo=0)
    end = p.int("endTime", lo=0)
    if start is None and end is None:
        start, end = now_ms - WEEK_MS, now_ms
    elif end is None:
        end = start + WEEK_MS
    elif start is None:
        start = end - WEEK_MS
    if end < start:
        raise bad("params error: endTime must be greater than startTime")
    if end - start > WEEK_MS:
        raise bad("The time range between startTime and endTime cannot exceed 7 days")
    return max(start, now_ms - TWO_YEARS_MS), end


def _cursor(p: Params) -> tuple[int, int] | None:
    text = p.str("cursor")
    if text is None:
        return None
    m = _CURSOR.match(text)
    if not m:
        raise bad("params error: cursor invalid")
    return int(m.group(1)), int(m.group(2))


def list_executions(acct: SimAccount, p: Params, now_ms: int) -> dict[str, Any]:
    p.linear()
    limit = p.int("limit", 50, 1, 100)
    start, end = time_window(p, now_ms)
    cursor = _cursor(p)
    symbol, order_id = p.str("symbol"), p.str("orderId")
    link_id, exec_type = p.str("orderLinkId"), p.str("execType")
    rows: list[dict[str, Any]] = []
    last_key: tuple[int, int] | None = None
    more = False
    for key, e in acct.executions.window_desc(start, end, cursor):
        if (symbol and e.symbol != symbol) or (order_id and e.order_id != order_id) \
                or (link_id and e.order_link_id != link_id) or (exec_type and e.exec_type != exec_type):
            continue
        if len(rows) == limit:
            more = True
            break
        rows.append(execution_rest(e))
        last_key = key
    next_cursor = f"{last_key[0]}_{last_key[1]}" if more and last_key else ""
    return {"nextPageCursor": next_cursor, "category": "linear", "list": rows}


def _orders_page(orders: list, p: Params, limit: int) -> dict[str, Any]:
    cursor = _cursor(p)
    ordered = sorted(orders, key=lambda o: (o.created_ms, o.priority), reverse=True)
    if cursor is not None:
        ordered = [o for o in ordered if (o.created_ms, o.priority) < cursor]
    page = ordered[:limit]
    more = len(ordered) > limit
    next_cursor = f"{page[-1].created_ms}_{page[-1].priority}" if more and page else ""
    return {"list": [order_rest(o) for o in page], "nextPageCursor": next_cursor}


def _order_filters(acct: SimAccount, p: Params) -> list:
    symbol, order_id, link_id = p.str("symbol"), p.str("orderId"), p.str("orderLinkId")
    status = p.str("orderStatus")
    out = []
    for o in acct.orders.values():
        if (symbol and o.symbol != symbol) or (order_id and o.order_id != order_id) \
                or (link_id and o.order_link_id != link_id) or (status and o.status != status):
            continue
        out.append(o)
    return out


def list_open_orders(acct: SimAccount, p: Params) -> dict[str, Any]:
    p.linear()
    if not (p.str("symbol") or p.str("settleCoin") or p.str("baseCoin")):
        raise bad("params error: symbol, baseCoin or settleCoin is required")
    limit = p.int("limit", 20, 1, 50)
    by_id = p.str("orderId") or p.str("orderLinkId")
    kind = p.str("orderFilter")
    if kind not in (None, "Order", "StopOrder"):
        raise bad("params error: orderFilter invalid")
    orders = [o for o in _order_filters(acct, p) if (by_id or o.is_active)
              and kind in (None, "StopOrder" if o.stop_order_type else "Order")]
    return _orders_page(orders, p, limit)


def list_order_history(acct: SimAccount, p: Params, now_ms: int) -> dict[str, Any]:
    p.linear()
    limit = p.int("limit", 20, 1, 50)
    start, end = time_window(p, now_ms)
    orders = [o for o in _order_filters(acct, p) if start <= o.created_ms <= end]
    return _orders_page(orders, p, limit)
