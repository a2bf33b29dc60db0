"""The bots' events (the Redis Streams `events:{bot_id}`, written by the live strategy runtime) read
and turned into alert lines (pure). Fields of an entry: `kind`, `bot_id`, `at` (ISO UTC), `data`
(a JSON object). See docs/contracts.md."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.telegram_c2.formatting import money
from shared.contracts import events_stream_key

# The kinds relayed; anything else is dead-lettered. The live runtime writes its risk guards' events
# as guard_tripped / guard_size_scaled / guard_halted / guard_restored; halted and size_changed are
# the names of the operators' original feed.
KNOWN_KINDS: tuple[str, ...] = (
    "entry", "exit", "stop_breakeven", "guard_tripped", "guard_halted", "guard_size_scaled", "guard_restored",
    "halted", "size_changed", "regime_change", "summary", "strategy_error", "order_rejected", "order_refused",
    "control", "started", "position_adopted", "adopted", "unexpected_position", "refusing_to_trade",
)
LABELS = {"stop_breakeven": "STOP TO BREAKEVEN", "guard_tripped": "GUARD TRIPPED", "guard_halted": "HALTED",
          "guard_size_scaled": "SIZE CHANGED", "guard_restored": "GUARD RESTORED", "halted": "HALTED",
          "size_changed": "SIZE CHANGED", "regime_change": "REGIME CHANGE", "summary": "SUMMARY",
          "strategy_error": "STRATEGY ERROR", "order_rejected": "ORDER REJECTED", "order_refused": "ORDER REFUSED",
          "control": "CONTROL", "started": "STARTED", "position_adopted": "POSITION ADOPTED", "adopted": "POSITION ADOPTED",
          "unexpected_position": "UNEXPECTED POSITION",
          "refusing_to_trade": "REFUSING TO TRADE"}
ENTRY_EXTRAS = (("ema_fast", "EMA fast"), ("ema_slow", "EMA slow"), ("regime", "regime"), ("stop", "stop"),
                ("stop_loss", "stop"), ("target", "target"), ("take_profit", "target"), ("trail", "trail"),
                ("trail_distance", "trail"), ("trail_activation", "trail from"), ("reason", "reason"))
MAX_VALUE = 80
MAX_MESSAGE = 4000


class BadEvent(ValueError):
    pass


@dataclass(frozen=True)
class BotEvent:
    stream: str
    entry_id: str
    kind: str
    bot_id: str
    at: datetime
    data: dict[str, Any]


def parse_kinds(text: str) -> frozenset[str]:
    """A comma-separated list of kinds (a setting); ValueError naming an unknown one."""
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(KNOWN_KINDS))
    if unknown:
        raise ValueError(f"unknown event kind {unknown[0]!r} (known: {', '.join(KNOWN_KINDS)})")
    return kinds


def parse_event(stream: str, entry_id: str, fields: dict[str, str] | None) -> BotEvent:
    """One stream entry as an event; BadEvent says what is wrong with it."""
    if not fields:
        raise BadEvent("entry has no fields (trimmed?)")
    missing = [k for k in ("kind", "bot_id", "at", "data") if not fields.get(k)]
    if missing:
        raise BadEvent(f"missing {', '.join(missing)}")
    kind, bot_id = fields["kind"], fields["bot_id"]
    if kind not in KNOWN_KINDS:
        raise BadEvent(f"unknown kind {kind[:40]!r}")
    if stream != events_stream_key(bot_id):
        raise BadEvent(f"bot_id {bot_id[:40]!r} on {stream}")
    try:
        at = datetime.fromisoformat(fields["at"].replace("Z", "+00:00"))
    except ValueError:
        raise BadEvent(f"bad time {fields['at'][:40]!r}") from None
    if at.tzinfo is None:
        raise BadEvent("time without a zone")
    try:
        data = json.loads(fields["data"])
    except ValueError:
        raise BadEvent("data is not JSON") from None
    if not isinstance(data, dict):
        raise BadEvent("data is not a JSON object")
    return BotEvent(stream, entry_id, kind, bot_id, at, data)


def wanted(kind: str, on: frozenset[str], off: frozenset[str]) -> bool:
    """`on` empty means every kind."""
    return (not on or kind in on) and kind not in off


def _text(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _held(seconds: Any) -> str | None:
    s = _decimal(seconds)
    if s is None or s < 0:
        return None
    total = int(s)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {total % 60}s"


def _direction(side: Any) -> str:
    return {"Buy": "long", "Sell": "short"}.get(str(side), _text(side))


def event_line(e: BotEvent, bot_label: str) -> str:
    d = e.data
    head = f"{e.at:%H:%M:%S} "
    if e.kind == "entry":
        side = f" {_direction(d['side'])}" if d.get("side") else ""
        parts = [f"{head}ENTRY {bot_label} {_text(d.get('symbol', '?'))}{side} "
                 f"{_text(d.get('qty', '?'))} @ {_text(d.get('price', '?'))}"]
        seen: set[str] = set()
        for key, label in ENTRY_EXTRAS:
            if d.get(key) not in (None, "") and label not in seen:
                seen.add(label)
                parts.append(f"{label} {_text(d[key])}")
        return ", ".join(parts)
    if e.kind == "exit":
        price = f" @ {_text(d['price'])}" if d.get("price") not in (None, "") else ""
        parts = [f"{head}EXIT {bot_label} {_text(d.get('symbol', '?'))} {_text(d.get('qty', '?'))}{price}"]
        if d.get("entry_price") not in (None, ""):
            parts.append(f"entry {_text(d['entry_price'])}")
        pnl = _decimal(next((d[k] for k in ("pnl", "net_pnl", "pnl_usdt") if d.get(k) not in (None, "")), None))
        if pnl is not None:
            pct = _decimal(d.get("pnl_pct"))
            parts.append(f"PnL {money(pnl, signed=True)} USDT" + (f" ({pct.quantize(Decimal('0.01')):+}%)"
                                                                   if pct is not None else ""))
        held = _held(d.get("holding_s", d.get("held_s")))
        if held:
            parts.append(f"held {held}")
        if d.get("reason"):
            parts.append(f"reason {_text(d['reason'])}")
        return ", ".join(parts)
    label = LABELS.get(e.kind, e.kind.upper())
    details = ", ".join(f"{k} {_text(v)}" for k, v in d.items())
    return f"{head}{label} {bot_label}" + (f": {details}" if details else "")


def batch_messages(lines: list[str]) -> list[str]:
    """The lines of one batch as few messages as fit Telegram's limit, each headed (pure)."""
    if not lines:
        return []
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line[:MAX_MESSAGE - 100]
        if chunks[-1] and size + len(line) + 1 > MAX_MESSAGE - 60:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    if len(chunks) == 1:
        head = "Bot event:" if len(lines) == 1 else f"Bot events ({len(lines)}):"
        return [head + "\n" + "\n".join(chunks[0])]
    return [f"Bot events ({len(lines)}, part {i}/{len(chunks)}):\n" + "\n".join(c)
            for i, c in enumerate(chunks, 1)]
