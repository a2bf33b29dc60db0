"""Keeps the PnL aggregates close behind the fills, off the write path.

The insert trigger only queues new fills (`trading.pnl_pending`, migration 0032); this task applies
the queue every `LISTENER_PNL_REFRESH_EVERY_S` (10 s) on a connection of its own, so the writer
never waits for the PnL books.
Readers apply whatever is left before they read, so the aggregates they see are exact either way.
"""
from __future__ import annotations

import asyncio

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from services.websocket_listener.counters import Counters

log = structlog.get_logger()


async def refresh_once(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT trading.pnl_refresh()")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def refresh_forever(pool: AsyncConnectionPool, counters: Counters, every_s: float, stop: asyncio.Event) -> None:
    """Apply the queue at start (fills queued before a restart), then after each interval in which
    the listener wrote fills. A failure is logged and retried at the next interval."""
    seen = -1
    while not stop.is_set():
        if counters.fills_written != seen:
            seen = counters.fills_written
            try:
                counters.pnl_applied += await refresh_once(pool)
            except (psycopg.Error, OSError) as exc:
                seen = -1
                log.warning("pnl_refresh_failed", error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            pass
