"""Who may do what, decided in one place: a handler that sees every update before any other.

Admins (C2_TELEGRAM_ADMIN_IDS) may do everything, viewers (C2_TELEGRAM_VIEWER_IDS) only read.
Anyone else gets no answer at all; the attempt is logged and written to the audit table.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from shared.queries.control import Control

log = structlog.get_logger()
CONTROL_COMMANDS = frozenset({"pause", "resume", "flatten"})
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

    def may(self, role: str, command: str) -> bool:
        if role == "admin":
            return True
        return role == "viewer" and command not in CONTROL_COMMANDS


def command_of(update: Update) -> tuple[str, str]:
    """(command, its arguments) of a command message or of an inline-button press."""
    if update.callback_query is not None:
        data = update.callback_query.data or ""
        return data.split(":", 1)[0][:32], data[:64]
    message = update.effective_message
    text = (message.text or message.caption or "") if message is not None else ""
    if text.startswith("/"):
        head, _, rest = text.partition(" ")
        return head[1:].split("@", 1)[0].lower()[:32], rest.strip()[:200]
    return "message", ""


def make_gate(access: Access, control: Control):  # type: ignore[no-untyped-def]
    denied: dict[int, tuple[float, int]] = {}

    def audit_allowed(user_id: int) -> bool:
        now = time.monotonic()
        start, count = denied.get(user_id, (now, 0))
        if now - start > 60:
            start, count = now, 0
        denied[user_id] = (start, count + 1)
        if len(denied) > 10_000:
            denied.clear()
        return count < AUDIT_DENIED_PER_MINUTE

    async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        role = access.role_of(user.id if user else None)
        command, args = command_of(update)
        if access.may(role, command):
            return
        uid = user.id if user else 0
        log.warning("c2_access_denied", user_id=uid, role=role, command=command)
        if audit_allowed(uid):
            try:
                await control.audit(user_id=uid, username=user.username if user else None, role=role,
                                    command=command, args=args, result="denied")
            except Exception as exc:  # noqa: BLE001 - the refusal stands even if the audit write fails
                log.error("audit_write_failed", error=type(exc).__name__)
        if role == "viewer" and update.effective_message is not None:
            if update.callback_query is not None:
                await update.callback_query.answer("Admins only.")
            else:
                await update.effective_message.reply_text("Not allowed: control commands are for admins only.")
        raise ApplicationHandlerStop

    return gate
