"""Producer side of `ingest:executions`: hand recovered rows to the listener and wait for its commit (IO).

The listener is the only writer of `trading.fills`. Each batch is one stream entry (`bot_id`,
`batch_id`, `executions` = the REST rows exactly as the exchange returned them); after its commit the
listener sets `ingest:result:{batch_id}` (`received`, `inserted`, `duplicates`, `rejected`). One poller
per process collects those hashes for every batch in flight; an entry whose result has arrived is
deleted from the stream so the stream does not grow with history.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.trade_sync.errors import IngestTimeout, TradeSyncError
from shared.contracts import INGEST_GROUP, INGEST_STREAM, ingest_result_key


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    sent: int
    received: int
    inserted: int
    duplicates: int
    rejected: int


def parse_result(batch_id: str, sent: int, fields: dict[str, str]) -> BatchResult | None:
    """A result hash -> BatchResult; None while it is absent or incomplete (pure)."""
    try:
        return BatchResult(batch_id, sent, int(fields["received"]), int(fields["inserted"]),
                           int(fields["duplicates"]), int(fields["rejected"]))
    except (KeyError, ValueError):
        return None


@dataclass
class _Pending:
    entry_id: str
    sent: int
    sent_at: float
    future: asyncio.Future[BatchResult]


class IngestProducer:
    def __init__(self, redis: Redis, run_id: str, *, timeout_s: float = 120.0, poll_s: float = 0.05,
                 max_in_flight: int = 64) -> None:
        self._redis = redis
        self._run_id = run_id
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._seq = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._room = asyncio.Semaphore(max_in_flight)
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def check_listener(self) -> None:
        """Refuse to start when nobody consumes the stream: entries would wait for ever."""
        try:
            groups = await self._redis.xinfo_groups(INGEST_STREAM)
        except ResponseError:
            groups = []
        if not any(g.get("name") == INGEST_GROUP for g in groups):
            raise TradeSyncError(f"no consumer group {INGEST_GROUP!r} on Redis stream {INGEST_STREAM}: "
                                 "start the websocket listener first (it writes the fills)")

    async def __aenter__(self) -> IngestProducer:
        self._poller = asyncio.create_task(self._poll(), name="ingest-results")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        for p in self._pending.values():
            if not p.future.done():
                p.future.cancel()

    async def send(self, bot_id: str, rows: list[dict[str, Any]], *, kind: str = "executions") -> asyncio.Future[BatchResult]:
        """Queue one batch; the future resolves with the listener's result after its commit."""
        await self._room.acquire()
        batch_id = f"{self._run_id}-{bot_id}-{next(self._seq)}"
        payload = msgspec.json.encode(rows).decode()
        entry = ({"bot_id": bot_id, "batch_id": batch_id, "executions": payload} if kind == "executions" else
                 {"kind": kind, "bot_id": bot_id, "batch_id": batch_id, "positions": payload})
        try:
            entry_id = await self._redis.xadd(INGEST_STREAM, entry)  # type: ignore[arg-type]
        except BaseException:
            self._room.release()
            raise
        fut: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _f: self._room.release())
        self._pending[batch_id] = _Pending(str(entry_id), len(rows), time.monotonic(), fut)
        self._wake.set()
        return fut

    async def _poll(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._poll_s)
            ids = list(self._pending)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for batch_id in ids:
                        pipe.hgetall(ingest_result_key(batch_id))
                    replies = await pipe.execute()
                done_entries: list[str] = []
                for batch_id, fields in zip(ids, replies, strict=True):
                    p = self._pending[batch_id]
                    result = parse_result(batch_id, p.sent, fields or {})
                    if result is not None:
                        del self._pending[batch_id]
                        done_entries.append(p.entry_id)
                        if not p.future.done():
                            p.future.set_result(result)
                if done_entries:
                    await self._redis.xdel(INGEST_STREAM, *done_entries)
            except RedisError:
                pass  # Redis restarting: the timeout below decides when to give up
            now = time.monotonic()
            for batch_id, p in list(self._pending.items()):
                if now - p.sent_at > self._timeout_s:
                    del self._pending[batch_id]
                    if not p.future.done():
                        p.future.set_exception(IngestTimeout(
                            f"the listener did not confirm batch {batch_id} within {self._timeout_s:.0f} s "
                            "(is the websocket listener running and consuming ingest:executions?)"))


async def send_position_snapshot(producer: IngestProducer, bot_id: str,
                                 rows: list[dict[str, Any]]) -> asyncio.Future[BatchResult]:
    """A `kind=position_snapshot` entry: REST `/v5/position/list` rows for the listener to apply."""
    return await producer.send(bot_id, rows, kind="position_snapshot")
