"""REST catch-up: what the WebSocket may have missed, read back from `/v5/execution/list` (IO only).

Runs at start, after every (re)connect of a bot's private stream, after a position mismatch, and on a
schedule; from the bot's durable watermark (the oldest exec time not known committed, see watermark.py)
minus an overlap, in windows of at most 7 days (Bybit's
limit), following cursors. Rows go through the same write path as live pushes, so overlap is free.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from psycopg_pool import AsyncConnectionPool

from shared.bybit.fields import datetime_to_ms
from shared.bybit.parse_rows import parse_execution_page, parse_position_page
from shared.bots import BOTS
from shared.bybit.rest_client import BybitRestClient
from services.trade_sync.exchange import AccountClient
from services.websocket_listener.counters import Counters
from services.websocket_listener.ingest import Ingestor, Ticket
from services.websocket_listener.rows import ListenerFill
from services.websocket_listener.watermark import Watermarks

log = structlog.get_logger()

WINDOW_MS = 7 * 86_400_000 - 1
PAGE_LIMIT = 100


def windows(start_ms: int, end_ms: int, width_ms: int = WINDOW_MS) -> list[tuple[int, int]]:
    """[start, end] cut into consecutive closed windows no wider than Bybit accepts."""
    out = []
    lo = start_ms
    while lo <= end_ms:
        hi = min(lo + width_ms, end_ms)
        out.append((lo, hi))
        lo = hi + 1
    return out


@dataclass
class PassRequests:
    """Pending catch-up requests, coalesced: from the last stored fill, and/or from the earliest gap start."""

    from_db: bool = False
    since: datetime | None = None

    def add(self, since: datetime | None) -> None:
        if since is None:
            self.from_db = True
        else:
            self.since = since if self.since is None else min(self.since, since)

    def take(self) -> PassRequests:
        taken = PassRequests(self.from_db, self.since)
        self.from_db, self.since = False, None
        return taken


class CatchUp:
    def __init__(self, bot_id: str, rest: BybitRestClient, pool: AsyncConnectionPool, ingest: Ingestor,
                 counters: Counters, *, symbols: Iterable[str], overlap_s: float, lookback_days: int,
                 every_s: float, watermarks: Watermarks | None = None, category: str = "linear") -> None:
        self.bot_id = bot_id
        self._rest = rest
        self._account = AccountClient(bot_id, BOTS[bot_id].env_prefix if bot_id in BOTS else bot_id.upper(), rest)
        self._pool = pool
        self._ingest = ingest
        self.counters = counters
        self._symbols = tuple(symbols)
        self._overlap = timedelta(seconds=overlap_s)
        self._lookback = timedelta(days=lookback_days)
        self._every_s = every_s
        self._category = category
        self._watermarks = watermarks
        self._wanted = asyncio.Event()
        self._requests = PassRequests()
        self._last_pass_started: datetime | None = None
        self.passes = 0
        self.last_success: datetime | None = None

    def request(self, since: datetime | None = None) -> None:
        """Ask for a pass from `since` (where a gap began), or from the last stored fill when None.

        Requests made while a pass runs coalesce into one next pass from the earliest point asked.
        A gap's start bounds the REST work by the outage, not by how fast fills arrive.
        """
        self._requests.add(since)
        self._wanted.set()

    def request_recent(self) -> None:
        """After a position mismatch: the missing fill is newer than the previous snapshot."""
        self.request(datetime.now(UTC) - 2 * self._overlap)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            wanted, stopping = asyncio.ensure_future(self._wanted.wait()), asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({wanted, stopping}, timeout=self._every_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in (wanted, stopping):
                task.cancel()
            if stop.is_set():
                break
            if not done:
                self.request(self._last_pass_started)  # the schedule: everything since the previous pass
            self._wanted.clear()
            taken = self._requests.take()
            try:
                await self.once(from_db=taken.from_db, since=taken.since)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - REST, network or database: retried, never fatal
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("catchup_failed", bot_id=self.bot_id, error=f"{type(exc).__name__}: {exc}"[:300],
                            retry_in_s=delay)
                await asyncio.sleep(delay)
                if taken.from_db:
                    self.request()
                if taken.since is not None:
                    self.request(taken.since)

    async def _since_last_stored(self) -> datetime:
        if self._watermarks is not None:
            last = await self._watermarks.load(self.bot_id)
        else:
            async with self._pool.connection() as conn:
                cur = await conn.execute("SELECT max(exec_time) FROM trading.fills WHERE bot_id = %s", (self.bot_id,))
                row = await cur.fetchone()
            last = row[0] if row else None
        now = datetime.now(UTC)
        return max(last, now - timedelta(days=730)) if last else now - self._lookback

    async def _get(self, path: str, params: dict[str, object]) -> dict:
        """Through trade_sync's per-account client: requests spaced by the allowance the venue announces in
        its rate-limit headers, a 10006 waits for the window's reset (then backs off), 5xx and dropped
        connections retried; what still fails ends the pass (retried by `run`)."""
        before = self._account.limiter.throttled
        try:
            return (await self._account.get(path, dict(params))).result
        finally:
            self.counters.catchup_rate_limited += self._account.limiter.throttled - before

    async def once(self, *, from_db: bool = True, since: datetime | None = None) -> Ticket:
        """One pass: executions since the last stored fill (or `since`), minus the overlap, then position
        snapshots; returns when committed."""
        started = time.monotonic()
        pass_started = datetime.now(UTC)
        points = [since] if since is not None else []
        if from_db or not points:
            points.append(await self._since_last_stored())
        since = min(points) - self._overlap
        if self._watermarks is not None:
            await self._watermarks.lower(self.bot_id, since)  # durable before any row older than it is held
        end_ms = int(time.time() * 1000) + 60_000
        ticket = Ticket()
        rows = 0
        for lo, hi in windows(datetime_to_ms(since), end_ms):
            cursor = ""
            while True:
                params: dict[str, object] = {"category": self._category, "startTime": lo, "endTime": hi,
                                             "limit": PAGE_LIMIT}
                if cursor:
                    params["cursor"] = cursor
                page = parse_execution_page(await self._get("/v5/execution/list", params), self._category)
                for bad in page.rejected:
                    await self._ingest.put_dead(f"rest:{self.bot_id}", self.bot_id, bad)
                for execution in page.executions:
                    await self._ingest.put_fill(ListenerFill(self.bot_id, execution, "sync"), ticket)
                rows += len(page.executions)
                if not page.next_cursor or page.next_cursor == cursor:
                    break
                cursor = page.next_cursor
        await self._positions()
        await self._ingest.barrier(ticket)
        await ticket.wait()
        if self._watermarks is not None:
            self._watermarks.done(self.bot_id, since)
        self.passes += 1
        self._last_pass_started = pass_started
        self.counters.catchups += 1
        self.counters.catchup_rows += rows
        self.last_success = datetime.now(UTC)
        if ticket.inserted:
            log.info("catchup_recovered", bot_id=self.bot_id, recovered=ticket.inserted, read=rows,
                     since=since.isoformat(), took_ms=round((time.monotonic() - started) * 1000))
        return ticket

    async def _positions(self) -> None:
        """Exchange position snapshots (flat ones included, so a stale Redis key is removed)."""
        seen: dict[str, object] = {}
        listed, bad, _ = parse_position_page(
            await self._get("/v5/position/list", {"category": self._category, "settleCoin": "USDT", "limit": 200}),
            self._category)
        for p in listed:
            seen[p.symbol] = p
        for symbol in self._symbols:
            if symbol in seen:
                continue
            one, more_bad, _ = parse_position_page(
                await self._get("/v5/position/list", {"category": self._category, "symbol": symbol}), self._category)
            bad += more_bad
            for p in one:
                seen[p.symbol] = p
        for b in bad:
            await self._ingest.put_dead(f"rest:{self.bot_id}", self.bot_id, b)
        for p in seen.values():
            await self._ingest.put_position(self.bot_id, p)  # type: ignore[arg-type]

