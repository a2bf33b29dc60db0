"""What the guards tell the runtime: events to act on and relay, refusals to log and count."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class EventKind(StrEnum):
    TRIPPED = "tripped"  # entries blocked
    SIZE_SCALED = "size_scaled"
    HALTED = "halted"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """``flatten``: the runtime must close every position of the bot now."""

    kind: EventKind
    guard: str  # an equity guard's name, or "kill_switch"
    at: datetime
    reason: str  # human text for the Telegram bot
    flatten: bool = False
    until: datetime | None = None  # when it lifts by itself; None: manual or on recovery
    size_factor: Decimal | None = None


class RefusalCode(StrEnum):
    KILL_SWITCH = "kill_switch"
    HALTED = "halted"
    ENTRIES_BLOCKED = "entries_blocked"
    SYMBOL_HAS_POSITION = "symbol_has_position"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_SYMBOL_NOTIONAL = "max_symbol_notional"
    MAX_GROSS_LEVERAGE = "max_gross_leverage"
    MAX_LEVERAGE = "max_leverage"
    SYMBOL_COOLDOWN = "symbol_cooldown"
    ENTRY_BLOCK = "entry_block"
    DAILY_ENTRY_LIMIT = "daily_entry_limit"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    text: str
