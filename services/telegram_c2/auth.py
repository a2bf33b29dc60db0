"""Who may do what, decided in one place: a handler that sees every update before any other.

Admins (C2_TELEGRAM_ADMIN_IDS) may do everything, viewers (C2_TELEGRAM_VIEWER_IDS) only read.
Anyone else gets no answer at all; the attempt is logged and written to the audit table.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import structlog
from telegram import MessageEntity, Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from shared.queries.control import BotController

log = structlog.get_logger()
CONTROL_COMMANDS = frozenset({"pause", "resume", "flatten", "killswitch"})
ADMINS_ONLY = "Not allowed: control commands are for admins only."
ADMINS_ONLY_BUTTON = "Admins only."
AUDIT_DENIED_PER_MINUTE = 10  # per user: a flood of refused attempts must not flood the database


@dataclass(frozen=True)
class Access:
    admin_ids: frozenset[int]
    viewer_ids: frozenset[int]

    def role_of(self, user_id: int | None) -> str:
        if user_id is not None and user_id in self.admin_ids:
            return "admin"
        if user_id is not None and user_id in self.viewer_ids:
            return "viewer"
        return "stranger"

    def may(self, role: str, commands: tuple[str, ...]) -> bool:
        """Admins everything; viewers anything that no reading of the update takes for a control command."""
        if role == "admin":
            return True
        return role == "viewer" and not CONTROL_COMMANDS.intersection(commands)


_LEADING_COMMAND = re.compile(r"/([A-Za-z0-9_]+)")  # how Telegram marks a command at the start


def _from_text(text: str | None, entities: tuple[MessageEntity, ...]) -> list[str]:
    """Every name `text` could be taken for: python-telegram-bot's reading (the text of the first
    `bot_command` entity at offset 0, up to any `@botname`), Telegram's own, and a split on any
    whitespace; so a separator or punctuation cannot hide a command from the gate."""
    if not text or not text.startswith("/"):
        return []
    names = []
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        names.append(text[1:entities[0].length].split("@", 1)[0])
    if (m := _LEADING_COMMAND.match(text)) is not None:
        names.append(m.group(1))
    head = text[1:].split(None, 1)
    if head:
        names.append(head[0].split("@", 1)[0])
    return [n.lower()[:32] for n in names]


def commands_of(update: Update) -> tuple[str, ...]:
    """The command names an update may be routed to: the button's action for an inline-button press,
    and whatever the text or caption of its message (new or edited) could be read as."""
    names: list[str] = []
    if update.callback_query is not None:
        names.append((update.callback_query.data or "").split(":", 1)[0].lower()[:32])
    message = update.effective_message
    if message is not None:
        names += _from_text(message.text, message.entities)
        names += _from_text(message.caption, message.caption_entities)
    return tuple(dict.fromkeys(names))


def args_of(update: Update) -> str:
    """What to record as the arguments (the button's data, or the text after the command)."""
    if update.callback_query is not None:
        return (update.callback_query.data or "")[:64]
    message = update.effective_message
    text = (message.text or message.caption or "") if message is not None else ""
    return " ".join(text.split()[1:])[:200] if text.startswith("/") else ""


def command_of(update: Update) -> tuple[str, str]:
    """(the command to record, its arguments): a control command if any reading names one."""
    names = commands_of(update)
    control = [n for n in names if n in CONTROL_COMMANDS]
    return (control or list(names) or ["message"])[0], args_of(update)


class Refuser:
    """Says no: logs the attempt, audits it (at most AUDIT_DENIED_PER_MINUTE rows per user and minute,
    so a flood of refused attempts cannot flood the database), and tells a viewer why; a stranger
    gets no answer at all."""

    def __init__(self, control: BotController) -> None:
        self._control = control
        self._denied: dict[int, tuple[float, int]] = {}

    def _audit_allowed(self, user_id: int) -> bool:
        now = time.monotonic()
        start, count = self._denied.get(user_id, (now, 0))
        if now - start > 60:
            start, count = now, 0
        self._denied[user_id] = (start, count + 1)
        if len(self._denied) > 10_000:
            self._denied.clear()
        return count < AUDIT_DENIED_PER_MINUTE

    async def refuse(self, update: Update, role: str) -> None:
        user = update.effective_user
        uid = user.id if user else 0
        command, args = command_of(update)
        log.warning("c2_access_denied", user_id=uid, role=role, command=command)
        if self._audit_allowed(uid):
            try:
                await self._control.audit(user_id=uid, username=user.username if user else None, role=role,
                                          command=command, args=args, result="denied")
            except Exception as exc:  # noqa: BLE001 - the refusal stands even if the audit write fails
                log.error("audit_write_failed", error=type(exc).__name__)
        if role != "viewer":
            return
        if update.callback_query is not None:
            await update.callback_query.answer(ADMINS_ONLY_BUTTON)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(ADMINS_ONLY)


def make_gate(access: Access, refuser: Refuser):  # type: ignore[no-untyped-def]
    async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        role = access.role_of(user.id if user else None)
        if access.may(role, commands_of(update)):
            return
        await refuser.refuse(update, role)
        raise ApplicationHandlerStop

    return gate
