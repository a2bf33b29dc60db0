"""The same reports in a terminal, without a Telegram token (as the `c2` database role).

    python -m services.telegram_c2.main cli analytics 7d
    python -m services.telegram_c2.main cli performance momentum_001 --chart /tmp/equity.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.telegram_c2 import formatting as fmt
from services.telegram_c2.args import MAX_DAYS, BadInput, parse_bot, parse_count, parse_fills_args, parse_window
from services.telegram_c2.chart import equity_png
from services.telegram_c2.service import open_backends
from shared.queries.reports import Reports
from shared.settings import DatabaseSettings, RedisSettings, load_settings

COMMANDS = ("status", "positions", "balance", "analytics", "performance", "daily", "fills")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py cli", description="C2 reports in the terminal")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("args", nargs="*")
    p.add_argument("--chart", type=Path, help="performance: also write the equity curve PNG here")
    return p


async def render(reports: Reports, command: str, args: list[str], chart: Path | None = None) -> str:
    if command == "status":
        return fmt.format_status(await reports.status())
    if command == "positions":
        bot_id = parse_bot(args[0], allow_all=True) if args else None
        return fmt.format_positions(await reports.positions(bot_id), bot_id)
    if command == "balance":
        return fmt.format_balances(await reports.balances())
    if command == "analytics":
        return fmt.format_analytics(await reports.analytics(parse_window(args[0]) if args else "today"))
    if command == "performance":
        bot_id = parse_bot(args[0], allow_all=True) if args else None
        report = await reports.performance(bot_id)
        if chart is not None:
            chart.write_bytes(equity_png(report.performance.equity_curve, f"Equity curve: {bot_id or 'all bots'}"))
        return fmt.format_performance(report)
    if command == "daily":
        return fmt.format_daily(await reports.daily(parse_count(args[0], what="days", maximum=MAX_DAYS) if args else 7))
    a = parse_fills_args(args)
    return fmt.format_fills(await reports.fills(a.count, a.bot_id), a.bot_id)


async def run_cli(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    db = load_settings(DatabaseSettings)
    rs = load_settings(RedisSettings)
    pool, redis_by_db = await open_backends(db, rs)
    try:
        print(await render(Reports(pool, redis_by_db), ns.command, ns.args, ns.chart))
        return 0
    except BadInput as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()
