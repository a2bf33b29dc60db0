"""Consumer of `ingest:executions`: executions the reconciler recovered, written by the single writer.

Entries carry `executions` (the contract in docs/contracts.md), or, with `kind=position_snapshot`,
`positions`: REST `/v5/position/list` rows applied like a catch-up snapshot (seq-guarded); the result
then counts applied rows as `inserted` and rows older than what Redis holds as `duplicates`.

Consumer group `listener`; an entry is acknowledged only after its rows are committed and its result
hash is set, so entries pending at a crash are read again (id "0") after the restart. Several entries
are read at once and committed together (up to the writer's batch size), each with its own result.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.bybit.records import BadFrame, ParseError
from shared.bybit.fields import decode_json, dump_raw
from shared.bybit.parse_rows import parse_execution_rows, parse_position
from shared.contracts import INGEST_GROUP, INGEST_STREAM, ingest_result_key
from services.websocket_listener.counters import Counters
from services.websocket_listener.ingest import Ingestor, Ticket
from services.websocket_listener.rows import ListenerFill

log = structlog.get_logger()

SOURCE = f"stream:{INGEST_STREAM}"  # dead letters' source


class RecoveredConsumer:
    def __init__(self, redis: Redis, ingest: Ingestor, counters: Counters, bot_ids: Iterable[str],
                 consumer: str, *, block_ms: int = 1000, count: int = 50) -> None:
        self._redis = redis
        self._ingest = ingest
        self.counters = counters
        self._bots = frozenset(bot_ids)
        self._consumer = consumer
        self._block_ms = block_ms
        self._count = count

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(INGEST_STREAM, INGEST_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Read up to `count` entries at once and queue them all: the writer commits them in as few
        transactions as its batch size allows. Each entry keeps its own ticket and result hash; the
        entries are acknowledged together after their commit, while the next read is already queued
        behind them (new entries only: pending ones are re-read alone, so none is queued twice)."""
        backlog = True  # first our own pending entries (id 0), then new ones (">")
        acking: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    await self.ensure_group()
                    reply = await self._redis.xreadgroup(INGEST_GROUP, self._consumer,
                                                         {INGEST_STREAM: "0" if backlog else ">"},
                                                         count=self._count, block=None if backlog else self._block_ms)
                    entries = reply[0][1] if reply else []
                    if backlog and not entries:
                        backlog = False
                        continue
                    queued: list[tuple[str, Ticket]] = []
                    for entry_id, fields in entries:
                        if stop.is_set():
                            break
                        queued.append((entry_id, await self._one(entry_id, fields or {})))
                    if acking is not None:  # at most one read awaiting its commit behind this one
                        await acking
                        acking = None
                    if queued:
                        acking = asyncio.create_task(self._ack_after_commit(queued), name="recovered-ack")
                    if backlog and acking is not None:
                        await acking  # a re-read from id 0 must not see these entries still pending
                        acking = None
                except asyncio.CancelledError:
                    raise
                except (RedisError, OSError) as exc:
                    log.warning("stream_read_failed", error=type(exc).__name__)
                    await asyncio.sleep(1.0)
        finally:
            if acking is not None:
                if stop.is_set():
                    await asyncio.shield(acking)  # the writer still runs: finish what was queued
                else:
                    acking.cancel()

    async def _one(self, entry_id: str, fields: dict[str, str]) -> Ticket:
        """Queue one entry's rows and its result barrier; the ticket resolves after their commit."""
        self.counters.stream_entries += 1
        bot_id = fields.get("bot_id", "")
        batch_id = fields.get("batch_id") or entry_id
        kind = fields.get("kind", "executions")
        ticket = Ticket()
        rejected: list[BadFrame] = []
        received = 0
        if bot_id not in self._bots:
            rejected.append(BadFrame(f"unknown bot_id {bot_id[:40]!r}", dump_raw(fields)))
        elif kind not in ("executions", "position_snapshot"):
            rejected.append(BadFrame(f"unknown entry kind {kind[:40]!r}", dump_raw(fields)))
        else:
            field = "executions" if kind == "executions" else "positions"
            rows = _json_list(fields.get(field))
            if rows is None:
                rejected.append(BadFrame(f"{field} is not a JSON list", dump_raw(fields)))
            elif kind == "executions":
                received = len(rows)
                good, bad = parse_execution_rows(rows)
                rejected.extend(bad)
                for execution in good:
                    await self._ingest.put_fill(ListenerFill(bot_id, execution, "sync"), ticket)
            else:
                received = len(rows)
                for row in rows:
                    try:
                        position = parse_position(row, "linear")
                    except ParseError as exc:
                        rejected.append(BadFrame(str(exc), dump_raw(row)))
                        continue
                    await self._ingest.put_position(bot_id, position, ticket)
        for bad in rejected:
            await self._ingest.put_dead(SOURCE, bot_id or None, bad)
        await self._ingest.barrier(ticket, result_key=ingest_result_key(batch_id), received=received,
                                   rejected=len(rejected))
        return ticket

    async def _ack_after_commit(self, queued: list[tuple[str, Ticket]]) -> None:
        """The result hashes are set by the writer after each commit; then one XACK for the read."""
        for _entry_id, ticket in queued:
            await ticket.wait()
        try:
            await self._redis.xack(INGEST_STREAM, INGEST_GROUP, *[entry_id for entry_id, _ in queued])
        except (RedisError, OSError) as exc:  # left pending: re-read after a restart, found duplicate
            log.warning("stream_ack_failed", error=type(exc).__name__, entries=len(queued))


def _json_list(raw: str | None) -> list | None:
    try:
        rows = decode_json(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return None
    return rows if isinstance(rows, list) else None
