"""The python-telegram-bot application: the gate first, then one handler per command."""
from __future__ import annotations

import structlog
from telegram import BotCommand, Update
from telegram.ext import (
    Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, TypeHandler, filters,
)

from services.telegram_c2 import handlers_cc as cc
from services.telegram_c2 import handlers_control as control
from services.telegram_c2 import handlers_kill as kill
from services.telegram_c2 import handlers_ops as ops
from services.telegram_c2 import handlers_read as read
from services.telegram_c2.args import BadArgs
from services.telegram_c2.auth import make_gate
from services.telegram_c2.deps import DEPS_KEY, Deps

log = structlog.get_logger()

READ_COMMANDS = {
    "start": cc.start, "cc": cc.cc, "sitrep": ops.sitrep, "quick": ops.quick, "trades": ops.trades,
    "help": read.help_command, "status": read.status, "positions": read.positions,
    "balance": read.balance, "analytics": read.analytics, "performance": read.performance, "daily": read.daily,
    "fills": read.fills,
}
CONTROL_COMMANDS = {"pause": control.pause, "resume": control.resume, "flatten": control.flatten,
                    "killswitch": kill.killswitch}
CONTROL_BUTTONS = {r"^flatten:": control.flatten_button, r"^killswitch:": kill.kill_button,
                   r"^(pause|resume):": cc.status_button}
MENU = [
    BotCommand("cc", "command center (buttons)"),
    BotCommand("sitrep", "situation report with a verdict"),
    BotCommand("quick", "equity, today's trips and PnL, open positions"),
    BotCommand("trades", "completed round trips [bot] [n]"),
    BotCommand("status", "services, bots, database and Redis health"),
    BotCommand("positions", "open positions [bot]"),
    BotCommand("balance", "equity and available per bot"),
    BotCommand("analytics", "report [bot] [today|7d|30d|all|N]"),
    BotCommand("performance", "metrics and equity chart [bot]"),
    BotCommand("daily", "net PnL per day [bot] [n]"),
    BotCommand("fills", "last fills [n] [bot]"),
    BotCommand("pause", "admins: pause <bot|all>"),
    BotCommand("resume", "admins: resume <bot|all>"),
    BotCommand("flatten", "admins: close a bot's positions <bot>"),
    BotCommand("killswitch", "admins: pause every bot and close everything"),
    BotCommand("help", "the list of commands"),
]


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every failure becomes one short reply; bad input says what was wrong."""
    err = context.error
    if not isinstance(update, Update) or update.effective_message is None:
        log.error("c2_error_outside_update", error=type(err).__name__)
        return
    if isinstance(err, BadArgs):
        text = str(err)
    else:
        log.error("c2_command_failed", error=type(err).__name__, detail=str(err)[:300])
        text = "Sorry, that failed (the database or Redis may be unavailable). Try again in a moment."
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text[:200])
        else:
            await update.effective_message.reply_text(text)
    except Exception as exc:  # noqa: BLE001 - nothing more can be done for this update
        log.error("c2_error_reply_failed", error=type(exc).__name__)


def build_application(token: str, base_url: str, deps: Deps) -> Application:  # type: ignore[type-arg]
    file_url = base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url
    app = Application.builder().token(token).base_url(base_url).base_file_url(file_url).build()
    app.bot_data[DEPS_KEY] = deps
    app.add_handler(TypeHandler(Update, make_gate(deps.access, deps.refuser)), group=-1)
    for fn in (*CONTROL_COMMANDS.values(), *CONTROL_BUTTONS.values()):
        if not getattr(fn, "admin_only", False):
            raise RuntimeError(f"control handler {fn.__name__} does not check the role itself")
    for name, fn in {**READ_COMMANDS, **CONTROL_COMMANDS}.items():
        app.add_handler(CommandHandler(name, fn))
    for pattern, fn in CONTROL_BUTTONS.items():
        app.add_handler(CallbackQueryHandler(fn, pattern=pattern))
    app.add_handler(CallbackQueryHandler(cc.cc_button, pattern=r"^cc:"))
    app.add_handler(MessageHandler(filters.COMMAND, read.unknown))
    app.add_handler(MessageHandler(filters.ALL & ~filters.COMMAND, read.help_command))
    app.add_error_handler(on_error)
    return app
