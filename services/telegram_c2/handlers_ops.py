"""The operators' summaries: /quick, /trades, /sitrep (any admin or viewer)."""
from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from services.telegram_c2 import formatting_ops as fmt_ops
from services.telegram_c2.args import check_args, parse_trades_args
from services.telegram_c2.deps import ops
from services.telegram_c2.handlers_read import reply


async def quick_text(context: ContextTypes.DEFAULT_TYPE) -> str:
    return fmt_ops.format_quick(await ops(context).quick())


async def sitrep_text(context: ContextTypes.DEFAULT_TYPE) -> str:
    return fmt_ops.format_sitrep(await ops(context).sitrep())


async def trades_text(context: ContextTypes.DEFAULT_TYPE, args: list[str]) -> str:
    a = parse_trades_args(args)
    assert isinstance(a.value, int)
    return fmt_ops.format_trades(await ops(context).trades(a.value, a.bot_id), a.bot_id)


async def quick(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    check_args(context.args or [], 0)
    await reply(update, await quick_text(context))


async def sitrep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    check_args(context.args or [], 0)
    await reply(update, await sitrep_text(context))


async def trades(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, await trades_text(context, context.args or []))
