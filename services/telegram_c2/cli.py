"""The same reports in a terminal, without a Telegram token (as the `c2` database role).

    python -m services.telegram_c2.main cli analytics 7d
    python -m services.telegram_c2.main cli performance momentum_001 --chart /tmp/equity.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.telegram_c2 import formatting as fmt
from services.telegram_c2 import formatting_ops as fmt_ops
from services.telegram_c2.args import (
    BadArgs, check_args, parse_analytics_args, parse_bot, parse_daily_args, parse_fills_args, parse_trades_args,
)
from services.telegram_c2.chart import equity_png
from services.telegram_c2.service import open_backends
from shared.queries.ops import Ops, pgbouncer_console_dsn
from shared.queries.reports import Reports
from shared.settings import DatabaseSettings, RedisSettings, load_settings

COMMANDS = ("status", "positions", "balance", "analytics", "performance", "daily", "fills", "quick", "trades",
            "sitrep")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py cli", description="C2 reports in the terminal")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("args", nargs="*")
    p.add_argument("--chart", type=Path, help="performance: also write the equity curve PNG here")
    return p


async def render(reports: Reports, command: str, args: list[str], chart: Path | None = None,
                 ops: Ops | None = None) -> str:
    if command in ("quick", "trades", "sitrep"):
        assert ops is not None
        if command == "trades":
            a = parse_trades_args(args)
            assert isinstance(a.value, int)
            return fmt_ops.format_trades(await ops.trades(a.value, a.bot_id), a.bot_id)
        check_args(args, 0)
        return fmt_ops.format_quick(await ops.quick()) if command == "quick" else fmt_ops.format_sitrep(await ops.sitrep())
    if command == "status":
        return fmt.format_status(await reports.status())
    if command == "positions":
        bot_id = parse_bot(args[0], allow_all=True) if args else None
        return fmt.format_positions(await reports.positions(bot_id), bot_id)
    if command == "balance":
        return fmt.format_balances(await reports.balances())
    if command == "analytics":
        a = parse_analytics_args(args)
        assert isinstance(a.value, str)
        return fmt.format_analytics(await reports.analytics(a.value, bot_id=a.bot_id))
    if command == "performance":
        bot_id = parse_bot(args[0], allow_all=True) if args else None
        report = await reports.performance(bot_id)
        if chart is not None:
            chart.write_bytes(equity_png(report.performance.equity_curve, f"Equity curve: {bot_id or 'all bots'}"))
        return fmt.format_performance(report)
    if command == "daily":
        d = parse_daily_args(args)
        assert isinstance(d.value, int)
        return fmt.format_daily(await reports.daily(d.value, d.bot_id))
    a = parse_fills_args(args)
    return fmt.format_fills(await reports.fills(a.count, a.bot_id), a.bot_id)


async def run_cli(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    db = load_settings(DatabaseSettings)
    rs = load_settings(RedisSettings)
    pool, redis_by_db = await open_backends(db, rs)
    try:
        reports = Reports(pool, redis_by_db)
        ops = Ops(pool, reports, pgbouncer_console_dsn(db))
        print(await render(reports, ns.command, ns.args, ns.chart, ops))
        return 0
    except BadArgs as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()
