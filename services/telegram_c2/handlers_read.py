"""Read-only commands: any admin or viewer."""
from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import ContextTypes

from services.telegram_c2 import formatting as fmt
from services.telegram_c2.args import (
    check_args, parse_analytics_args, parse_bot, parse_daily_args, parse_fills_args,
)
from services.telegram_c2.chart import equity_png
from services.telegram_c2.deps import chunks, deps

HELP = """Alpha trading C2 (bots: alpha = shortseller_001, bravo = lxalgo_001, charlie = momentum_001)
/cc - command center (buttons)
/sitrep - every service and bot, pools, last sync, PnL today, and a verdict
/quick - equity per bot, today's round trips and net PnL, open positions
/status - services, bots, database and Redis health
/positions [bot] - open positions
/balance - equity and available balance per bot
/analytics [bot] [today|7d|30d|all|N] - fills, volume, PnL, win rate, per strategy, top symbols
/performance [bot] - PnL, win rate, profit factor, drawdown, Sharpe, holding time, equity chart
/daily [bot] [n] - net PnL per day for the last n days (default 7)
/trades [bot] [n] - the last n completed round trips (default 10)
/fills [n] [bot] - the last n fills (default 10)
Admins only:
/pause <bot|all> - open nothing new, keep managing what is open
/resume <bot|all>
/flatten <bot> - pause that bot and close its positions (asks for confirmation)
/killswitch - pause every bot and close everything (asks for confirmation)"""


async def reply(update: Update, text: str) -> None:
    assert update.effective_message is not None
    for piece in chunks(text):
        await update.effective_message.reply_text(piece)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, HELP)


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    check_args(context.args or [], 0)
    await reply(update, fmt.format_status(await deps(context).reports.status()))


async def positions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    args = check_args(context.args or [], 1)
    bot_id = parse_bot(args[0], allow_all=True) if args else None
    await reply(update, fmt.format_positions(await deps(context).reports.positions(bot_id), bot_id))


async def balance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    check_args(context.args or [], 0)
    await reply(update, fmt.format_balances(await deps(context).reports.balances()))


async def analytics(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    a = parse_analytics_args(context.args or [])
    assert isinstance(a.value, str)
    await reply(update, fmt.format_analytics(await deps(context).reports.analytics(a.value, bot_id=a.bot_id)))


async def performance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    args = check_args(context.args or [], 1)
    bot_id = parse_bot(args[0], allow_all=True) if args else None
    report = await deps(context).reports.performance(bot_id)
    await reply(update, fmt.format_performance(report))
    png = await asyncio.to_thread(equity_png, report.performance.equity_curve,
                                  f"Equity curve: {bot_id or 'all bots'}")
    assert update.effective_message is not None
    await update.effective_message.reply_photo(png, caption=f"Equity curve (cumulative net PnL), {bot_id or 'all bots'}")


async def daily(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    a = parse_daily_args(context.args or [])
    assert isinstance(a.value, int)
    await reply(update, fmt.format_daily(await deps(context).reports.daily(a.value, a.bot_id)))


async def fills(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    a = parse_fills_args(context.args or [])
    await reply(update, fmt.format_fills(await deps(context).reports.fills(a.count, a.bot_id), a.bot_id))


async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Unknown command. Send /help for the list.")
