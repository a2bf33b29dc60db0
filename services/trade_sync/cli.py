"""The operator's commands; every failure is one line on stderr and a non-zero exit code.

    backfill --months N [--bot ID] [--symbol S] [--json]   history through the listener, resumable
    sync [--hours H] [--bot ID] [--symbol S] [--json]       recent executions and positions vs the record
    status [--json]                                          per-bot table of the record and of past runs
    serve                                                    `sync` every TRADE_SYNC_INTERVAL_S (the container)
    health                                                   exit 0 when the scheduler beat recently
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, NoReturn

import psycopg
import structlog
from redis.exceptions import RedisError

from services.trade_sync.errors import EXIT_FAILED, EXIT_OK, TradeSyncError, UsageError
from services.trade_sync.windows import MAX_MONTHS

log = structlog.get_logger()
MAX_SYNC_HOURS = 24 * 30


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `python main.py {self.prog.split()[-1]} --help`)"
                         if " " in self.prog else f"{message} (see --help)")


def _months(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of months, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    if value > MAX_MONTHS:
        raise argparse.ArgumentTypeError(f"{value} is more than Bybit keeps ({MAX_MONTHS} months)")
    return value


def _hours(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_SYNC_HOURS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_SYNC_HOURS}, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="trade_sync", description="Reconcile trading.fills with the exchange; backfill history.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bf = sub.add_parser("backfill", help="load N months of executions per bot through the listener")
    bf.add_argument("--months", type=_months, required=True)
    bf.add_argument("--bot", default=None, help="one bot id (default: every bot with keys)")
    bf.add_argument("--symbol", default=None, help="one symbol, e.g. BTCUSDT (default: all)")
    bf.add_argument("--json", action="store_true", help="print the result as JSON")
    sy = sub.add_parser("sync", help="recover missing fills and report position drift")
    sy.add_argument("--hours", type=_hours, default=None, help="how far back (default TRADE_SYNC_WINDOW_HOURS, 24)")
    sy.add_argument("--bot", default=None)
    sy.add_argument("--symbol", default=None)
    sy.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="per-bot state of the record and of the last runs")
    st.add_argument("--json", action="store_true")
    sub.add_parser("serve", help="sync on a schedule (the container's default command)")
    sub.add_parser("health", help="exit 0 when the scheduler is alive")
    return ap


def _exit_code(outcomes: list[Any]) -> int:
    from services.trade_sync.report import failure_lines
    for line in failure_lines(outcomes):
        print(f"trade_sync: {line}", file=sys.stderr)
    return EXIT_OK if all(o.status == "ok" for o in outcomes) else EXIT_FAILED


async def _backfill(args: argparse.Namespace) -> int:
    from services.trade_sync.backfill import run_backfill
    from services.trade_sync.context import check_symbol, load_all, open_context, resolve_bots
    from services.trade_sync.report import backfill_table, outcome_json

    settings, db, rs, venue, keys = load_all()
    bots = resolve_bots(keys, args.bot)
    symbol = check_symbol(args.symbol)
    ctx = await open_context(settings, db, rs, venue, keys, max_pool=2 + 2 * len(bots))
    try:
        outcomes = await run_backfill(ctx, bots, args.months, symbol)
    finally:
        await ctx.close()
    print(json.dumps([outcome_json(o) for o in outcomes]) if args.json else backfill_table(outcomes))
    return _exit_code(outcomes)


async def _sync(args: argparse.Namespace) -> int:
    from services.trade_sync.context import check_symbol, load_all, open_context, resolve_bots
    from services.trade_sync.reconcile import run_sync
    from services.trade_sync.report import outcome_json, sync_table

    settings, db, rs, venue, keys = load_all()
    bots = resolve_bots(keys, args.bot)
    symbol = check_symbol(args.symbol)
    ctx = await open_context(settings, db, rs, venue, keys, max_pool=2 + 2 * len(bots))
    try:
        outcomes, skipped = await run_sync(ctx, bots, args.hours or settings.sync_hours, symbol)
    finally:
        await ctx.close()
    print(json.dumps([outcome_json(o) for o in outcomes]) if args.json else sync_table(outcomes, skipped))
    return _exit_code(outcomes)


async def _status(args: argparse.Namespace) -> int:
    from shared.db.pool import open_pool
    from psycopg_pool import PoolTimeout
    from services.trade_sync.context import settings_or_usage
    from services.trade_sync.report import status_table
    from services.trade_sync.status import bot_statuses
    from services.trade_sync.store import Store
    from shared.settings import ConfigError, DatabaseSettings

    db = settings_or_usage(DatabaseSettings)
    try:
        pool = await open_pool(db, "reconciler", max_size=2, wait_s=10.0)
    except ConfigError as exc:
        raise UsageError(f"config error: {exc}") from None
    except PoolTimeout:
        raise TradeSyncError(f"cannot connect to PostgreSQL through PgBouncer at {db.pgbouncer_host}:"
                             f"{db.pgbouncer_port}") from None
    try:
        statuses = await bot_statuses(Store(pool))
    finally:
        await pool.close()
    print(json.dumps([s.as_json() for s in statuses]) if args.json else status_table(statuses))
    return EXIT_OK


async def _serve(args: argparse.Namespace) -> int:
    from services.trade_sync.context import load_all, open_context, resolve_bots
    from services.trade_sync.service import serve

    settings, db, rs, venue, keys = load_all()
    bots = resolve_bots(keys, None)
    ctx = await open_context(settings, db, rs, venue, keys, max_pool=2 + 2 * len(bots))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(ctx, bots, stop)
    finally:
        await ctx.close()
    return EXIT_OK


async def _health(args: argparse.Namespace) -> int:
    from shared.bots import PLATFORM_REDIS_DB
    from shared.redis_client import redis_for
    from shared.settings import RedisSettings
    from services.trade_sync.context import settings_or_usage
    from services.trade_sync.service import HEARTBEAT_TTL_S, heartbeat_age_s
    from shared.contracts import TRADE_SYNC_HEARTBEAT_KEY

    redis = redis_for(settings_or_usage(RedisSettings), PLATFORM_REDIS_DB, retries=1)
    try:
        value = await redis.get(TRADE_SYNC_HEARTBEAT_KEY)
    except (RedisError, OSError):
        raise TradeSyncError("unhealthy: Redis is unreachable") from None
    finally:
        await redis.aclose()
    age = heartbeat_age_s(value, datetime.now(UTC))
    if age is None or age > HEARTBEAT_TTL_S:
        raise TradeSyncError("unhealthy: the scheduler has not beaten in the last "
                             f"{HEARTBEAT_TTL_S} s ({TRADE_SYNC_HEARTBEAT_KEY} is "
                             f"{'absent' if value is None else 'stale'})")
    print(f"healthy: last beat {age:.0f} s ago")
    return EXIT_OK


_COMMANDS = {"backfill": _backfill, "sync": _sync, "status": _status, "serve": _serve, "health": _health}


async def _run_cancellable(args: argparse.Namespace) -> int:
    """SIGINT/SIGTERM cancel the command, which closes its run rows as 'interrupted' on the way out."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if args.command != "serve" and task is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
    try:
        return await _COMMANDS[args.command](args)
    except asyncio.CancelledError:
        print("trade_sync: interrupted; completed windows are kept and the next run resumes after them",
              file=sys.stderr)
        return 130


def _configure_logging(command: str) -> None:
    from shared.log import configure_logging
    level = None
    if command in ("backfill", "sync", "status", "health") and "LOG_LEVEL" not in os.environ and sys.stderr.isatty():
        level = "WARNING"  # the progress bar and the result table say enough on a terminal
    configure_logging("trade_sync", level=level)


def _report(exc: BaseException) -> int:
    """One line on stderr for any failure, and its exit code."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    if isinstance(exc, TradeSyncError):
        print(f"trade_sync: {exc}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, psycopg.Error):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"trade_sync: database error: {first}", file=sys.stderr)
    elif isinstance(exc, (RedisError, OSError)):
        print(f"trade_sync: Redis or network error: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    else:  # a bug: one line for the operator, the traceback only when asked for
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exception(exc)
        print(f"trade_sync: unexpected error: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
    return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(args.command)
        return asyncio.run(_run_cancellable(args))
    except (Exception, KeyboardInterrupt) as exc:
        return _report(exc)


if __name__ == "__main__":
    raise SystemExit(main())
