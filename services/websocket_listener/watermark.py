"""The durable per-bot watermark (migration 0041): the oldest exec time not known committed.

Invariant: every fill of the bot older than its stored `resume_from` is committed, except pushes late by
less than the catch-up overlap. Kept by two moves under one lock (so a raise computed before a lowering
can never land after it):
- `lower`: before a catch-up pass reads rows from `since`, `resume_from` becomes at most `since`, durably,
  and the pass counts as outstanding until it succeeds;
- `advance_once` (every second and at shutdown): `resume_from` becomes the oldest of the fills held
  uncommitted and of the outstanding passes, or, when there are none, the newest fill committed.
The restart catch-up reads from `resume_from` minus the overlap (`load`).
"""
from __future__ import annotations

import asyncio
from datetime import datetime

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from services.websocket_listener.ingest import Ingestor

log = structlog.get_logger()

ADVANCE_EVERY_S = 1.0
_UPSERT = (
    "INSERT INTO trading.listener_watermarks (bot_id, resume_from) VALUES (%s, %s) ON CONFLICT (bot_id) "
    "DO UPDATE SET resume_from = {value}, updated_at = now()"
)
_LOWER_SQL = _UPSERT.format(value="LEAST(listener_watermarks.resume_from, EXCLUDED.resume_from)")
_SET_SQL = _UPSERT.format(value="EXCLUDED.resume_from")


class Watermarks:
    def __init__(self, pool: AsyncConnectionPool, ingest: Ingestor) -> None:
        self._pool = pool
        self._ingest = ingest
        self._lock = asyncio.Lock()
        self.outstanding: dict[str, datetime] = {}  # per bot: the start of catch-up passes not yet done
        self.written: dict[str, datetime] = {}

    async def load(self, bot_id: str) -> datetime | None:
        """The bot's stored watermark; for a bot without one (first start with 0041), its newest fill."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce((SELECT resume_from FROM trading.listener_watermarks WHERE bot_id = %s),"
                " (SELECT max(exec_time) FROM trading.fills WHERE bot_id = %s))", (bot_id, bot_id))
            row = await cur.fetchone()
        return row[0] if row else None

    async def lower(self, bot_id: str, since: datetime) -> None:
        """Before reading rows from `since`: committed first, so a crash while they are held loses none."""
        async with self._lock:
            prev = self.outstanding.get(bot_id)
            self.outstanding[bot_id] = since if prev is None else min(prev, since)
            async with self._pool.connection() as conn:
                await conn.execute(_LOWER_SQL, (bot_id, since))
            self.written[bot_id] = min(self.written.get(bot_id, since), since)

    def done(self, bot_id: str, since: datetime) -> None:
        """A pass from `since` committed everything it read: passes from later points are covered by it."""
        if bot_id in self.outstanding and self.outstanding[bot_id] >= since:
            del self.outstanding[bot_id]

    def candidates(self) -> dict[str, datetime]:
        held = self._ingest.oldest_held()
        out: dict[str, datetime] = {}
        for bot_id in set(held) | set(self.outstanding) | set(self._ingest.newest_committed):
            points = [t for t in (held.get(bot_id), self.outstanding.get(bot_id)) if t is not None]
            out[bot_id] = min(points) if points else self._ingest.newest_committed[bot_id]
        return out

    async def advance_once(self) -> None:
        async with self._lock:
            changed = {b: t for b, t in self.candidates().items() if self.written.get(b) != t}
            if not changed:
                return
            async with self._pool.connection() as conn:
                async with conn.transaction():
                    for bot_id, t in sorted(changed.items()):
                        await conn.execute(_SET_SQL, (bot_id, t))
            self.written.update(changed)

    async def advance_forever(self, stop: asyncio.Event, every_s: float = ADVANCE_EVERY_S) -> None:
        while not stop.is_set():
            try:
                await self.advance_once()
            except (psycopg.Error, OSError) as exc:
                log.warning("watermark_write_failed", error=str(exc).splitlines()[0][:300] if str(exc) else
                            type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                pass
