"""Decisions as JSON, so a live driver can save them with the state that caused them (`_outbox`)
and a restarted process can send them again (pure; orders are idempotent through their orderLinkId)."""
from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from strategies.runtime.orders import CancelAll, CancelOrder, Decision, PlaceOrder, SetLeverage, TradingStop

OUTBOX_KEY = "_outbox"
_KINDS: dict[str, type] = {c.__name__: c for c in (PlaceOrder, TradingStop, CancelOrder, CancelAll, SetLeverage)}
_DECIMALS = {"qty", "price", "stop_loss", "take_profit", "trailing_stop", "active_price", "leverage"}


def decision_to_json(d: Decision) -> dict[str, Any]:
    intent = d.intent
    body = {f.name: (str(v) if isinstance(v, Decimal) else v)
            for f in fields(intent) if (v := getattr(intent, f.name)) is not None}  # type: ignore[arg-type]
    return {"time_ms": d.time_ms, "kind": type(intent).__name__, "intent": body, "cause": d.cause}


def decision_from_json(raw: dict[str, Any]) -> Decision:
    cls = _KINDS.get(raw.get("kind", ""))
    if cls is None:
        raise ValueError(f"unknown decision kind {raw.get('kind')!r}")
    body = {k: (Decimal(v) if k in _DECIMALS and v is not None else v) for k, v in raw["intent"].items()}
    return Decision(int(raw["time_ms"]), cls(**body), str(raw.get("cause") or ""))
