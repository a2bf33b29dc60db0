"""Prunes the fills batches' receipts (migration 0035).

A receipt is read only by a retry of its own batch in this process, normally within a second of being
written; only an outage stretches that, and while any write is retrying nothing is pruned. So receipts
are kept `KEEP` (15 min) and pruned every minute: at a sustained 5,000 fills/s that is at most about
4.5 million exec_ids held, instead of a day's worth.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger()

KEEP = timedelta(minutes=15)
PRUNE_EVERY_S = 60.0


async def prune_once(pool: AsyncConnectionPool, keep: timedelta = KEEP) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT trading.prune_ingest_receipts(%s)", (keep,))
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def prune_forever(pool: AsyncConnectionPool, stop: asyncio.Event, retrying: Callable[[], bool],
                        every_s: float = PRUNE_EVERY_S) -> None:
    """At start, then every `every_s`, unless a write is retrying (its receipt may be the answer it
    needs); a failure is logged and retried at the next interval."""
    while not stop.is_set():
        if not retrying():
            try:
                pruned = await prune_once(pool)
                if pruned:
                    log.debug("ingest_receipts_pruned", rows=pruned)
            except (psycopg.Error, OSError) as exc:
                log.warning("ingest_receipts_prune_failed",
                            error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            pass
