"""/killswitch: after a confirmation button, pause every bot and close everything (admins only;
checked by the gate and again here). Every step is audited."""
from __future__ import annotations

import secrets
import time

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from services.telegram_c2.args import check_args
from services.telegram_c2.deps import PendingFlatten, deps
from services.telegram_c2.formatting_ops import format_kill
from services.telegram_c2.guard import admin_only
from services.telegram_c2.handlers_control import audit, who

log = structlog.get_logger()
KILL = "killswitch"
ASK_DATA = f"{KILL}:ask"


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, raw: str) -> None:
    d = deps(context)
    now = time.monotonic()
    for token in [t for t, p in d.kills.items() if p.expires_at < now]:
        del d.kills[token]
    token = secrets.token_hex(6)
    user_id = update.effective_user.id if update.effective_user else 0
    d.kills[token] = PendingFlatten("all", user_id, now + d.settings.confirm_ttl_s)
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton("Yes, kill everything", callback_data=f"{KILL}:yes:{token}"),
        InlineKeyboardButton("Cancel", callback_data=f"{KILL}:no:{token}"),
    ]])
    await audit(update, context, KILL, raw, "confirm_requested")
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        "KILL SWITCH: pause every bot, cancel every open order and close every position of every bot? "
        f"(expires in {d.settings.confirm_ttl_s:.0f}s)", reply_markup=keyboard)


@admin_only
async def killswitch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    raw = " ".join(context.args or [])
    try:
        check_args(context.args or [], 0)
    except Exception as exc:
        await audit(update, context, KILL, raw, "rejected", str(exc))
        raise
    await ask(update, context, raw)


@admin_only
async def kill_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    if query.data == ASK_DATA:  # from the command center
        await query.answer()
        await ask(update, context, "")
        return
    parts = (query.data or "").split(":")
    d = deps(context)
    pending = d.kills.get(parts[2]) if len(parts) == 3 else None
    user_id = update.effective_user.id if update.effective_user else 0
    if pending is None or pending.expires_at < time.monotonic() or pending.user_id != user_id:
        await query.answer("This confirmation has expired.")
        await audit(update, context, KILL, query.data or "", "expired")
        return
    del d.kills[parts[2]]
    if parts[1] != "yes":
        await query.answer("Cancelled.")
        await query.edit_message_text("Kill switch cancelled.")
        await audit(update, context, KILL, "", "cancelled")
        return
    await query.answer("Kill switch engaged.")
    try:
        report = await d.control.kill_switch(who(update))
    except Exception as exc:  # the button is answered already: say it in the message itself
        log.error("killswitch_failed", error=type(exc).__name__, detail=str(exc)[:300])
        await query.edit_message_text("Kill switch FAILED before it finished. Check /sitrep and /positions, "
                                      "then try again.")
        try:
            await audit(update, context, KILL, "", "error", type(exc).__name__)
        except Exception as audit_exc:  # noqa: BLE001 - the database may be what failed
            log.error("audit_write_failed", error=type(audit_exc).__name__)
        return
    text = format_kill(report)
    await query.edit_message_text(text[:4096])
    try:
        await audit(update, context, KILL, "", "ok" if report.clean else "incomplete", text)
    except Exception as exc:  # noqa: BLE001 - what was done is already on screen
        log.error("audit_write_failed", error=type(exc).__name__)
