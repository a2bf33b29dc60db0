"""Prunes the fills batches' receipts (migration 0035) once they are a day old.

A receipt is read only by a retry of its own batch, seconds after it was written (a retry waits for
the database to come back, so a long outage stretches that): a day is far beyond any retry.
"""
from __future__ import annotations

import asyncio

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger()

PRUNE_EVERY_S = 600.0


async def prune_once(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT trading.prune_ingest_receipts()")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def prune_forever(pool: AsyncConnectionPool, stop: asyncio.Event, every_s: float = PRUNE_EVERY_S) -> None:
    """At start, then every `every_s`; a failure is logged and retried at the next interval."""
    while not stop.is_set():
        try:
            pruned = await prune_once(pool)
            if pruned:
                log.info("ingest_receipts_pruned", rows=pruned)
        except (psycopg.Error, OSError) as exc:
            log.warning("ingest_receipts_prune_failed",
                        error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            pass
