"""/cc (and /start for admins): the command center, a menu of inline buttons.

Report buttons (`cc:<report>`) are open to viewers. Control buttons carry the control command's own
name as their action (`pause:<bot>`, `resume:<bot>`, `killswitch:ask`), so the gate refuses them to
a viewer exactly as it refuses the typed commands, and each handler checks the role again."""
from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from services.telegram_c2 import formatting as fmt
from services.telegram_c2.args import check_args
from services.telegram_c2.deps import chunks, deps
from services.telegram_c2.formatting_ops import bot_name
from services.telegram_c2.guard import admin_only
from services.telegram_c2.handlers_control import apply_status, audit
from services.telegram_c2.handlers_kill import ASK_DATA
from services.telegram_c2.handlers_ops import quick_text, sitrep_text, trades_text
from services.telegram_c2.handlers_read import HELP
from shared.bots import BOTS

MENU_TEXT = "Command center"
READ_ACTIONS = ("sitrep", "quick", "positions", "analytics", "trades", "daily", "bots")


def menu() -> InlineKeyboardMarkup:
    b = InlineKeyboardButton
    return InlineKeyboardMarkup([
        [b("Situation report", callback_data="cc:sitrep"), b("Quick status", callback_data="cc:quick")],
        [b("Positions", callback_data="cc:positions"), b("Analytics (today)", callback_data="cc:analytics")],
        [b("Trades", callback_data="cc:trades"), b("Daily", callback_data="cc:daily")],
        [b("Bots: pause / resume", callback_data="cc:bots"), b("KILL SWITCH", callback_data=ASK_DATA)],
    ])


def bots_keyboard() -> InlineKeyboardMarkup:
    b = InlineKeyboardButton
    return InlineKeyboardMarkup(
        [[b(f"Pause {s.alias}", callback_data=f"pause:{bot_id}"), b(f"Resume {s.alias}", callback_data=f"resume:{bot_id}")]
         for bot_id, s in BOTS.items()]
        + [[b("Pause all", callback_data="pause:all"), b("Resume all", callback_data="resume:all")]])


async def cc(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    check_args(context.args or [], 0)
    assert update.effective_message is not None
    await update.effective_message.reply_text(MENU_TEXT, reply_markup=menu())


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins land in the command center; viewers get the list of commands."""
    role = deps(context).access.role_of(update.effective_user.id if update.effective_user else None)
    assert update.effective_message is not None
    if role == "admin":
        await update.effective_message.reply_text(f"Connected as admin. {MENU_TEXT}", reply_markup=menu())
    else:
        for piece in chunks(f"Connected as {role}.\n\n{HELP}"):
            await update.effective_message.reply_text(piece)


async def _read_text(action: str, context: ContextTypes.DEFAULT_TYPE) -> str:
    d = deps(context)
    if action == "sitrep":
        return await sitrep_text(context)
    if action == "quick":
        return await quick_text(context)
    if action == "positions":
        return fmt.format_positions(await d.reports.positions(None), None)
    if action == "analytics":
        return fmt.format_analytics(await d.reports.analytics("today"))
    if action == "trades":
        return await trades_text(context, [])
    if action == "daily":
        return fmt.format_daily(await d.reports.daily(7))
    statuses = {b.bot_id: b.control for b in (await d.reports.status()).bots}
    return "Bots:\n" + "\n".join(f"  {bot_name(b)}: {statuses.get(b, 'unknown')}" for b in BOTS)


async def cc_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A report button: the report as a new message under the menu."""
    query = update.callback_query
    assert query is not None and query.message is not None
    action = (query.data or "").split(":", 1)[-1]
    if action not in READ_ACTIONS:
        await query.answer("Unknown button.")
        return
    await query.answer()
    text = await _read_text(action, context)
    markup = bots_keyboard() if action == "bots" else None
    pieces = chunks(text)
    for i, piece in enumerate(pieces):
        await context.bot.send_message(query.message.chat.id, piece,
                                       reply_markup=markup if i == len(pieces) - 1 else None)


@admin_only
async def status_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`pause:<bot|all>` or `resume:<bot|all>` from the bots keyboard."""
    query = update.callback_query
    assert query is not None and query.message is not None
    command, _, target = (query.data or "").partition(":")
    if command not in ("pause", "resume") or (target != "all" and target not in BOTS):
        await query.answer("Unknown button.")
        await audit(update, context, command[:32], query.data or "", "rejected", "unknown button")
        return
    targets = tuple(BOTS) if target == "all" else (target,)
    text = await apply_status(update, context, command, "paused" if command == "pause" else "active",
                              targets, f"button {target}")
    await query.answer(text[:200])
    await context.bot.send_message(query.message.chat.id, text)
