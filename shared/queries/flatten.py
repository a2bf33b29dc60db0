"""Closing a bot's positions on the exchange with the bot's own key.

`/flatten` and `/killswitch` must work even when the strategy process is hung or gone, so trade_sync
(which holds every bot's key) does it on C2's request (flatten_requests.py): cancel the bot's open
orders, then one reduce-only market order per open position, sized from freshly read positions. The orders carry
`orderLinkId = "{bot_id}-flatten-{hex}"`, so the listener attributes the fills (close reason
`flatten`) like any other order of the bot.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from shared.bybit.parse_rows import parse_position_page
from shared.bybit.rest_client import BybitApiError, BybitHttpError, BybitRestClient


@dataclass(frozen=True)
class ClosedPosition:
    symbol: str
    side: str  # the side of the position that was closed
    qty: Decimal
    order_id: str


@dataclass(frozen=True)
class FlattenOutcome:
    bot_id: str
    cancelled_orders: int
    closed: tuple[ClosedPosition, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Leftovers:
    """What a bot still holds on the exchange after a flatten: open positions and open orders."""
    bot_id: str
    positions: tuple[tuple[str, str, Decimal], ...]  # (symbol, side, size)
    open_orders: int
    error: str | None = None


def flatten_link_id(bot_id: str) -> str:
    return f"{bot_id}-flatten-{secrets.token_hex(6)}"[:36]


class Flattener:
    def __init__(self, clients: dict[str, BybitRestClient]) -> None:
        self._clients = clients

    def can_flatten(self, bot_id: str) -> bool:
        return bot_id in self._clients

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def flatten(self, bot_id: str) -> FlattenOutcome:
        client = self._clients[bot_id]
        errors: list[str] = []
        cancelled = 0
        try:
            resp = await client.post("/v5/order/cancel-all", {"category": "linear", "settleCoin": "USDT"})
            cancelled = len(resp.result.get("list") or [])
        except (BybitApiError, BybitHttpError, OSError) as exc:
            errors.append(f"cancel-all: {exc}")
        try:
            resp = await client.get("/v5/position/list", {"category": "linear", "settleCoin": "USDT", "limit": 200})
        except (BybitApiError, BybitHttpError, OSError) as exc:
            return FlattenOutcome(bot_id, cancelled, (), (*errors, f"position list: {exc}"))
        listed, unreadable, _ = parse_position_page(resp.result)
        errors.extend(f"position list: unreadable row ({bad.reason})" for bad in unreadable)
        closed: list[ClosedPosition] = []
        for position in listed:
            if position.is_flat or position.side not in ("Buy", "Sell"):
                continue
            body = {"category": "linear", "symbol": position.symbol,
                    "side": "Sell" if position.side == "Buy" else "Buy", "orderType": "Market",
                    "qty": position.size, "reduceOnly": True, "positionIdx": 0, "orderLinkId": flatten_link_id(bot_id)}
            try:
                order = await client.post("/v5/order/create", body)
            except (BybitApiError, BybitHttpError, OSError) as exc:
                errors.append(f"{position.symbol}: {exc}")
                continue
            closed.append(ClosedPosition(position.symbol, position.side, position.size,
                                         str(order.result.get("orderId", ""))))
        return FlattenOutcome(bot_id, cancelled, tuple(closed), tuple(errors))

    async def leftovers(self, bot_id: str) -> Leftovers:
        client = self._clients[bot_id]
        try:
            pos = await client.get("/v5/position/list", {"category": "linear", "settleCoin": "USDT", "limit": 200})
            orders = await client.get("/v5/order/realtime", {"category": "linear", "settleCoin": "USDT", "limit": 50})
        except (BybitApiError, BybitHttpError, OSError) as exc:
            return Leftovers(bot_id, (), 0, f"could not check: {exc}")
        held = tuple((str(r["symbol"]), str(r.get("side") or ""), Decimal(str(r.get("size") or "0")))
                     for r in pos.result.get("list") or [] if Decimal(str(r.get("size") or "0")) != 0)
        return Leftovers(bot_id, held, len(orders.result.get("list") or []))
