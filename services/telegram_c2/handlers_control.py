"""Control commands: admins only (refused by the gate in auth.py, and again here by `admin_only`).
Each one is audited."""
from __future__ import annotations

import secrets
import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from services.telegram_c2.args import BadArgs, check_args, parse_bot
from services.telegram_c2.deps import PendingFlatten, deps
from services.telegram_c2.formatting import format_control
from services.telegram_c2.guard import admin_only
from shared.bots import BOTS

FLATTEN = "flatten"


async def audit(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, args: str, result: str,
                 detail: str | None = None) -> None:
    user = update.effective_user
    await deps(context).control.audit(
        user_id=user.id if user else 0, username=user.username if user else None,
        role=deps(context).access.role_of(user.id if user else None), command=command, args=args,
        result=result, detail=detail)


def who(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id}" if user else "telegram:unknown"


async def apply_status(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, status: str,
                       targets: tuple[str, ...], raw: str) -> str:
    """Pause or resume `targets`, audited; the reply to show. Shared by the commands and the buttons."""
    try:
        result = await deps(context).control.set_status(targets, status, who(update))
    except Exception as exc:
        await audit(update, context, command, raw, "error", type(exc).__name__)
        raise
    await audit(update, context, command, raw, "ok", ",".join(targets))
    return format_control(result)


async def _set_status(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, status: str) -> None:
    raw = " ".join(context.args or [])
    try:
        args = check_args(context.args or [], 1)
        if not args:
            raise BadArgs(f"Usage: /{command} <bot|all>")
        bot_id = parse_bot(args[0], allow_all=True)
    except BadArgs as exc:
        await audit(update, context, command, raw, "rejected", str(exc))
        raise
    targets = tuple(BOTS) if bot_id is None else (bot_id,)
    text = await apply_status(update, context, command, status, targets, raw)
    assert update.effective_message is not None
    await update.effective_message.reply_text(text)


@admin_only
async def pause(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_status(update, context, "pause", "paused")


@admin_only
async def resume(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_status(update, context, "resume", "active")


@admin_only
async def flatten(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    raw = " ".join(context.args or [])
    try:
        args = check_args(context.args or [], 1)
        if not args:
            raise BadArgs("Usage: /flatten <bot>")
        bot_id = parse_bot(args[0])
        assert bot_id is not None
    except BadArgs as exc:
        await audit(update, context, FLATTEN, raw, "rejected", str(exc))
        raise
    d = deps(context)
    now = time.monotonic()
    for token in [t for t, p in d.pending.items() if p.expires_at < now]:
        del d.pending[token]
    token = secrets.token_hex(6)
    user_id = update.effective_user.id if update.effective_user else 0
    d.pending[token] = PendingFlatten(bot_id, user_id, now + d.settings.confirm_ttl_s)
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(f"Yes, flatten {bot_id}", callback_data=f"{FLATTEN}:yes:{token}"),
        InlineKeyboardButton("Cancel", callback_data=f"{FLATTEN}:no:{token}"),
    ]])
    await audit(update, context, FLATTEN, raw, "confirm_requested", bot_id)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        f"Close every position of {bot_id}? This cannot be undone. "
        f"(expires in {d.settings.confirm_ttl_s:.0f}s)", reply_markup=keyboard)


@admin_only
async def flatten_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    parts = (query.data or "").split(":")
    d = deps(context)
    pending = d.pending.get(parts[2]) if len(parts) == 3 else None
    user_id = update.effective_user.id if update.effective_user else 0
    if pending is None or pending.expires_at < time.monotonic() or pending.user_id != user_id:
        await query.answer("This confirmation has expired.")
        await audit(update, context, FLATTEN, query.data or "", "expired")
        return
    del d.pending[parts[2]]
    if parts[1] != "yes":
        await query.answer("Cancelled.")
        await query.edit_message_text(f"Flatten of {pending.bot_id} cancelled.")
        await audit(update, context, FLATTEN, pending.bot_id, "cancelled")
        return
    await query.answer("Flatten requested.")  # before the wait for trade_sync's result (up to C2_FLATTEN_WAIT_S)
    try:
        result = await d.control.flatten(pending.bot_id, who(update))
    except Exception as exc:
        await audit(update, context, FLATTEN, pending.bot_id, "error", type(exc).__name__)
        await query.edit_message_text(f"Flatten of {pending.bot_id} FAILED before it finished "
                                      f"({type(exc).__name__}). Check /positions, then try again.")
        return
    await audit(update, context, FLATTEN, pending.bot_id, "ok" if result.status == "paused" else "incomplete",
                result.detail)
    await query.edit_message_text(format_control(result))
