"""`sync`: the exchange's recent executions and positions against trading.fills and Redis (IO orchestration).

Missing executions go to the listener (the only writer) and are counted as recovered once it has
committed them. Position drift is confirmed by a second read a moment later (a position that merely
moved in between is not drift); it is repaired through the listener when TRADE_SYNC_REPAIR_POSITIONS
is on, otherwise reported.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import structlog
from redis.asyncio import Redis

from services.trade_sync.backfill import BotOutcome, preflight
from services.trade_sync.context import SyncContext
from services.trade_sync.drift import Drift, compare, confirmed, exchange_views
from services.trade_sync.errors import TradeSyncError
from services.trade_sync.exchange import AccountClient
from services.trade_sync.ingest import BatchResult, IngestProducer, send_position_snapshot
from services.trade_sync.lock import BotLocks
from services.trade_sync.store import RunSpec, RunTally
from services.trade_sync.windows import dt_to_ms, plan_windows
from shared.contracts import position_key_prefix

log = structlog.get_logger()


async def redis_positions(redis: Redis, bot_id: str) -> dict[str, str]:
    """`position:{bot_id}:{symbol}` -> raw JSON, for every symbol the listener holds."""
    prefix = position_key_prefix(bot_id)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=200)]
    if not keys:
        return {}
    values = await redis.mget(keys)
    return {k[len(prefix):]: v for k, v in zip(keys, values, strict=True) if v is not None}


async def _drift(ctx: SyncContext, client: AccountClient, bot_id: str) -> tuple[list[Drift], int, list[dict]]:
    redis = ctx.redis_of_bot(bot_id)
    snapshots, raw_rows = await client.positions()
    first = compare(exchange_views(snapshots), await redis_positions(redis, bot_id))
    checked = len({p.symbol for p in snapshots if not p.is_flat} | set(await redis_positions(redis, bot_id)))
    if not first or ctx.settings.drift_confirm_s <= 0:
        return first, checked, raw_rows
    await asyncio.sleep(ctx.settings.drift_confirm_s)
    snapshots, raw_rows = await client.positions()
    return confirmed(first, compare(exchange_views(snapshots), await redis_positions(redis, bot_id))), checked, raw_rows


async def _repair(ctx: SyncContext, client: AccountClient, producer: IngestProducer, bot_id: str, drifts: list[Drift],
                  raw_rows: list[dict]) -> int:
    by_symbol = {r.get("symbol"): r for r in raw_rows}
    rows = []
    for d in drifts:
        row = by_symbol.get(d.symbol)
        if row is None:  # flat on the exchange: its own row says so
            _, flat_rows = await client.positions(d.symbol)
            row = flat_rows[0] if flat_rows else None
        if row is not None:
            rows.append(row)
    if not rows:
        return 0
    await (await send_position_snapshot(producer, bot_id, rows))
    remaining, _, _ = await _drift(ctx, client, bot_id)
    return len(drifts) - len({(d.symbol, d.kind) for d in remaining} & {(d.symbol, d.kind) for d in drifts})


async def _sync_bot(ctx: SyncContext, client: AccountClient, producer: IngestProducer, spec: RunSpec,
                    tally: RunTally) -> BotOutcome:
    t0 = time.monotonic()
    bot_id = spec.bot_id
    try:
        exchange_ids: set[str] = set()
        futures: list[asyncio.Future[BatchResult]] = []
        for window in plan_windows(dt_to_ms(spec.range_start), dt_to_ms(spec.range_end)):
            async for rows in client.execution_pages(window, spec.symbol):
                tally.pages += 1
                tally.fetched += len(rows)
                ids = [r["execId"] for r in rows]
                exchange_ids.update(ids)
                present = await ctx.store.present_exec_ids(ids)
                missing = [r for r in rows if r["execId"] not in present]
                tally.already_present += len(rows) - len(missing)
                if missing:
                    tally.missing_found += len(missing)
                    futures.append(await producer.send(bot_id, missing))
            tally.windows_done += 1
        stored = await ctx.store.exec_ids_between(bot_id, spec.range_start, spec.range_end, spec.symbol)
        tally.unknown_to_exchange = len(stored - exchange_ids)
        for result in await asyncio.gather(*futures):
            tally.recovered += result.inserted
            tally.inserted += result.inserted
            tally.already_present += result.duplicates
            tally.rejected += result.rejected
        if spec.symbol is None:
            drifts, tally.positions_checked, raw_rows = await _drift(ctx, client, bot_id)
            tally.drift_found = len(drifts)
            tally.drift = [d.as_dict() for d in drifts]
            if drifts and ctx.settings.repair_positions:
                tally.drift_repaired = await _repair(ctx, client, producer, bot_id, drifts, raw_rows)
            if drifts:
                log.warning("position_drift", bot_id=bot_id, drift=tally.drift,
                            repaired=tally.drift_repaired if ctx.settings.repair_positions else "reported only")
    except TradeSyncError as exc:
        tally.requests = client.stats.requests
        await ctx.store.finish_run(spec, tally, "failed", str(exc))
        return BotOutcome(bot_id, "failed", tally, time.monotonic() - t0, str(exc))
    tally.requests = client.stats.requests
    problems = []
    if tally.rejected:
        problems.append(f"{tally.rejected} rows rejected by the listener")
    if tally.drift_found > tally.drift_repaired:
        problems.append(f"position drift on {tally.drift_found - tally.drift_repaired} symbol(s)")
    status = "partial" if problems else "ok"
    error = "; ".join(problems) or None
    await ctx.store.finish_run(spec, tally, status, error)
    log.info("sync_done", bot_id=bot_id, status=status, fetched=tally.fetched, missing=tally.missing_found,
             recovered=tally.recovered, drift=tally.drift_found)
    return BotOutcome(bot_id, status, tally, time.monotonic() - t0, error)


async def run_sync(ctx: SyncContext, bot_ids: list[str], hours: int, symbol: str | None = None, *,
                   trigger: str = "cli") -> tuple[list[BotOutcome], list[str]]:
    """Sync the bots in parallel. From the schedule, bots busy with another run are skipped (returned)."""
    run_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    start = now - timedelta(hours=hours)
    locks = BotLocks(ctx.redis, f"sync --hours {hours}", ctx.settings.lock_ttl_s)
    producer = IngestProducer(ctx.redis, run_id, timeout_s=ctx.settings.ingest_timeout_s)
    clients: dict[str, AccountClient] = {}
    specs: list[RunSpec] = []
    tallies: dict[str, RunTally] = {}
    try:
        await producer.check_listener()
        skipped = await locks.acquire(bot_ids, skip_held=trigger == "schedule")
        bots = [b for b in bot_ids if b not in skipped]
        if not bots:
            return [], skipped
        clients = {b: ctx.account(b) for b in bots}
        await preflight(clients, now, symbol)
        await ctx.store.close_interrupted(bots)
        specs = [RunSpec(run_id, "sync", trigger, b, symbol, None, None, start, now) for b in bots]
        tallies = {b: RunTally(windows_total=len(plan_windows(dt_to_ms(start), dt_to_ms(now)))) for b in bots}
        await ctx.store.start_runs(specs, tallies)
        async with producer:
            outcomes = await asyncio.gather(*(_sync_bot(ctx, clients[s.bot_id], producer, s, tallies[s.bot_id])
                                              for s in specs))
        return list(outcomes), skipped
    except asyncio.CancelledError:
        await asyncio.shield(_close(ctx, specs, tallies, "interrupted", locks.lost or "stopped by a signal"))
        raise
    except Exception as exc:
        await asyncio.shield(_close(ctx, specs, tallies, "failed", str(exc) or type(exc).__name__))
        raise
    finally:
        for c in clients.values():
            await c.close()
        await locks.release()


async def _close(ctx: SyncContext, specs: list[RunSpec], tallies: dict[str, RunTally], status: str, reason: str) -> None:
    for s in specs:
        try:
            await ctx.store.finish_run(s, tallies[s.bot_id], status, reason[:500])
        except Exception:
            log.warning("could_not_close_run_row", bot_id=s.bot_id)
