"""What the handlers need, stored once in `application.bot_data`."""
from __future__ import annotations

from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from services.telegram_c2.auth import Access, Refuser
from services.telegram_c2.config import C2Settings
from shared.queries.control import BotController
from shared.queries.ops import Ops
from shared.queries.reports import Reports

DEPS_KEY = "c2"
TELEGRAM_TEXT_LIMIT = 4096


@dataclass(frozen=True)
class PendingFlatten:
    bot_id: str
    user_id: int
    expires_at: float


@dataclass
class Deps:
    reports: Reports
    control: BotController
    access: Access
    settings: C2Settings
    ops: Ops | None = None
    pending: dict[str, PendingFlatten] = field(default_factory=dict)
    kills: dict[str, PendingFlatten] = field(default_factory=dict)  # kill switch confirmations (bot_id "all")
    refuser: Refuser = field(init=False)

    def __post_init__(self) -> None:
        self.refuser = Refuser(self.control)


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    return context.application.bot_data[DEPS_KEY]  # type: ignore[no-any-return]


def chunks(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split a long report at line breaks so each piece fits one Telegram message."""
    out, cur = [], ""
    for line in text.split("\n"):
        line = line[:limit]
        if cur and len(cur) + 1 + len(line) > limit:
            out.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    out.append(cur)
    return out


def ops(context: ContextTypes.DEFAULT_TYPE) -> Ops:
    d = deps(context)
    if d.ops is None:
        raise RuntimeError("the operators' queries are not configured")
    return d.ops
