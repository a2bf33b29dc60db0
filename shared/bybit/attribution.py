"""Who placed an execution and why it closed: `orderLinkId` tags and close reasons (pure)."""
from __future__ import annotations

import re

TRADE_EXEC_TYPE = "Trade"
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
