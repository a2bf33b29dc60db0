"""`backfill`: every bot's history, window by window, through the listener; resumable (IO orchestration)."""
from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from typing import TextIO

import aiohttp
import structlog

from shared.bybit.rest_client import BybitApiError, BybitHttpError
from services.trade_sync.context import SyncContext
from services.trade_sync.errors import TradeSyncError, UsageError
from services.trade_sync.exchange import AccountClient
from services.trade_sync.ingest import BatchResult, IngestProducer
from services.trade_sync.lock import BotLocks
from services.trade_sync.order import in_execution_order
from services.trade_sync.progress import Progress
from services.trade_sync.store import RunSpec, RunTally
from services.trade_sync.windows import Window, dt_to_ms, months_back, plan_windows

log = structlog.get_logger()


@dataclass
class BotOutcome:
    bot_id: str
    status: str  # ok | partial | failed | interrupted
    tally: RunTally
    seconds: float
    error: str | None = None
    fetch_seconds: float | None = None  # until the last page was read (the rest is the listener committing)


@dataclass
class BotPlan:
    spec: RunSpec
    windows: list[Window]
    tally: RunTally
    resumed: bool
    last_page_at: float = 0.0


@dataclass(frozen=True)
class WindowSlots:
    """Per bot: windows being fetched (`windows_in_flight`), and windows held in memory until sent (twice
    that). Both admit windows oldest first, so the oldest unsent window always gets its turn."""
    fetching: asyncio.Semaphore
    buffered: asyncio.Semaphore


async def _plan(ctx: SyncContext, run_id: str, bot_id: str, symbol: str | None, months: int,
                now: datetime, trigger: str) -> BotPlan:
    start = months_back(now, months)
    resumable = await ctx.store.resumable_job(bot_id, symbol)
    job_id, covered = resumable if resumable else (str(uuid.uuid4()), [])
    windows = plan_windows(dt_to_ms(start), dt_to_ms(now), covered)
    total = plan_windows(dt_to_ms(start), dt_to_ms(now))
    tally = RunTally(windows_total=len(windows), windows_resumed=len(covered))
    spec = RunSpec(run_id, "backfill", trigger, bot_id, symbol, months, job_id, start, now)
    if resumable:
        log.info("backfill_resumed", bot_id=bot_id, job_id=job_id, windows_completed_before=len(covered),
                 windows_left=len(windows), windows_full_plan=len(total))
    return BotPlan(spec, windows, tally, resumable is not None)


async def _one_window(ctx: SyncContext, client: AccountClient, producer: IngestProducer, plan: BotPlan, window: Window,
                      slots: WindowSlots, progress: Progress, my_turn: asyncio.Event, next_turn: asyncio.Event) -> None:
    """Fetch the whole window (a few thousand rows) and look its rows up; then, once every older window
    of the bot has been sent, send the new ones sorted by execution order: the listener commits
    history oldest first. Windows are disjoint in time, so the early look-up cannot miss a row."""
    bot_id, symbol, tally = plan.spec.bot_id, plan.spec.symbol, plan.tally
    futures: list[asyncio.Future[BatchResult]] = []
    pages = fetched = known = 0
    try:
        async with slots.buffered:  # held until sent: a bounded number of windows in memory
            rows_of_window: list[dict[str, Any]] = []
            async with slots.fetching:
                async for rows in client.execution_pages(window, symbol):
                    pages += 1
                    tally.pages += 1
                    fetched += len(rows)
                    tally.fetched += len(rows)
                    progress.add_executions(len(rows))
                    rows_of_window.extend(rows)
            plan.last_page_at = max(plan.last_page_at, time.monotonic())
            ordered = in_execution_order(rows_of_window)
            del rows_of_window
            batches: list[list[dict[str, Any]]] = []
            step = ctx.settings.batch_rows  # fewer, larger commits for the listener
            for i in range(0, len(ordered), step):
                chunk = ordered[i:i + step]
                stored = await ctx.store.present_exec_ids([r["execId"] for r in chunk])  # one look-up per batch
                known += len(stored)
                new = [r for r in chunk if r["execId"] not in stored]
                if new:
                    batches.append(new)
            del ordered
            await my_turn.wait()
            for batch in batches:
                futures.append(await producer.send(bot_id, batch))
    finally:
        next_turn.set()
    results = await asyncio.gather(*futures)
    inserted = sum(r.inserted for r in results)
    present = known + sum(r.duplicates for r in results)
    rejected = sum(r.rejected for r in results)
    tally.inserted += inserted
    tally.already_present += present
    tally.rejected += rejected
    tally.requests = client.stats.requests
    if rejected or any(r.received != r.sent for r in results):
        log.error("window_incomplete", bot_id=bot_id, window_start=window.start.isoformat(), rejected=rejected)
        return  # not recorded as done: the next run fetches it again
    tally.windows_done += 1
    await ctx.store.window_done(plan.spec, window, pages, fetched, inserted, present, tally)
    progress.window_done(bot_id, window.start.isoformat(), window.end.isoformat(), fetched, inserted, present)


async def _run_bot(ctx: SyncContext, client: AccountClient, producer: IngestProducer, plan: BotPlan,
                   progress: Progress) -> BotOutcome:
    t0 = time.monotonic()
    slots = WindowSlots(asyncio.Semaphore(ctx.settings.windows_in_flight),
                        asyncio.Semaphore(2 * ctx.settings.windows_in_flight))
    error: str | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            turns = [asyncio.Event() for _ in range(len(plan.windows) + 1)]
            turns[0].set()
            for i, window in enumerate(plan.windows):  # oldest first; the semaphore admits in this order
                tg.create_task(_one_window(ctx, client, producer, plan, window, slots, progress,
                                           turns[i], turns[i + 1]))
    except BaseExceptionGroup as eg:
        first = first_leaf(eg)
        if not isinstance(first, TradeSyncError):
            raise first from None  # database or Redis: the whole run stops, and says why
        error = str(first)
    if error is not None:
        plan.tally.requests = client.stats.requests
        await ctx.store.finish_run(plan.spec, plan.tally, "failed", error)
        return BotOutcome(plan.spec.bot_id, "failed", plan.tally, time.monotonic() - t0, error)
    plan.tally.requests = client.stats.requests
    status = "ok" if plan.tally.windows_done == plan.tally.windows_total else "partial"
    error = None if status == "ok" else f"{plan.tally.rejected} rows rejected by the listener (see trading.dead_letters)"
    await ctx.store.finish_run(plan.spec, plan.tally, status, error)
    fetch_s = (plan.last_page_at or time.monotonic()) - t0
    return BotOutcome(plan.spec.bot_id, status, plan.tally, time.monotonic() - t0, error, fetch_s)


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def check_instrument(client: AccountClient, symbol: str) -> None:
    """An unknown symbol would quietly return nothing: refuse it (public endpoint, outside the account limit)."""
    try:
        resp = await client.rest.get("/v5/market/instruments-info", {"category": "linear", "symbol": symbol})
        listed = [r for r in resp.result.get("list") or [] if isinstance(r, dict) and r.get("symbol") == symbol]
    except BybitApiError:
        listed = []
    except (BybitHttpError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise TradeSyncError(f"cannot check symbol {symbol} on the exchange: {type(exc).__name__}") from None
    if not listed:
        raise UsageError(f"--symbol {symbol} is not a USDT linear instrument on this exchange")


async def preflight(clients: dict[str, AccountClient], now: datetime, symbol: str | None = None) -> None:
    """One small request per bot before anything is written: bad keys or symbols fail here, all at once."""
    window = Window(dt_to_ms(now) - 60_000, dt_to_ms(now))

    async def probe(client: AccountClient) -> None:
        await client.get("/v5/execution/list", {"category": "linear", "symbol": symbol, **window.params(),
                                                "limit": 1})

    if symbol is not None and clients:
        await check_instrument(next(iter(clients.values())), symbol)
    results = await asyncio.gather(*(probe(c) for c in clients.values()), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for r in errors:
        if not isinstance(r, TradeSyncError):
            raise r
    if errors:
        raise TradeSyncError("; ".join(str(e) for e in errors))


async def run_backfill(ctx: SyncContext, bot_ids: list[str], months: int, symbol: str | None, *,
                       trigger: str = "cli", stream: TextIO | None = None) -> list[BotOutcome]:
    """Backfill the bots in parallel; each bot's row in `trading.sync_runs` says how it ended."""
    run_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    locks = BotLocks(ctx.redis, f"backfill --months {months}", ctx.settings.lock_ttl_s)
    clients = {b: ctx.account(b) for b in bot_ids}
    producer = IngestProducer(ctx.redis, run_id, timeout_s=ctx.settings.ingest_timeout_s)
    plans: list[BotPlan] = []
    try:
        await producer.check_listener()
        await locks.acquire(bot_ids)
        await preflight(clients, now, symbol)
        await ctx.store.close_interrupted(bot_ids)
        plans = [await _plan(ctx, run_id, b, symbol, months, now, trigger) for b in bot_ids]
        await ctx.store.start_runs([p.spec for p in plans], {p.spec.bot_id: p.tally for p in plans})
        log.info("backfill_started", run_id=run_id, bots=bot_ids, months=months, symbol=symbol,
                 windows=sum(len(p.windows) for p in plans))
        progress = Progress(stream or sys.stderr, sum(len(p.windows) for p in plans))
        async with producer, progress:
            outcomes = await asyncio.gather(*(_run_bot(ctx, clients[p.spec.bot_id], producer, p, progress)
                                              for p in plans))
        return list(outcomes)
    except asyncio.CancelledError:
        await asyncio.shield(_close_open_rows(ctx, plans, "interrupted", locks.lost or "stopped by a signal"))
        raise
    except Exception as exc:
        await asyncio.shield(_close_open_rows(ctx, plans, "failed", str(exc) or type(exc).__name__))
        raise
    finally:
        for c in clients.values():
            await c.close()
        await locks.release()


async def _close_open_rows(ctx: SyncContext, plans: list[BotPlan], status: str, reason: str) -> None:
    """Rows still 'running' say how the run ended (rows already finished are left as they are)."""
    for p in plans:
        try:
            await ctx.store.finish_run(p.spec, p.tally, status, reason[:500])
        except Exception:  # the database may be what failed; the next run closes the row
            log.warning("could_not_close_run_row", bot_id=p.spec.bot_id)
