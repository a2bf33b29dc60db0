"""The single write path: parsed records -> PostgreSQL (one transaction per batch) -> Redis and pub/sub.

Everything durable goes through one queue and one writer, so what arrives while a commit is in flight
is batched into the next one (two batches may be committing at once), and the order "fills committed,
then positions and publishes" holds for every record: batches are announced one at a time, in the
order they were taken. Nothing is announced before it is committed.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bybit.records import BadFrame, OrderUpdate, PositionSnapshot, WalletSnapshot
from shared.bybit.fields import dump_raw
from shared.contracts import FILLS_CHANNEL, fill_feed_key, position_key, position_seq_key
from services.websocket_listener.counters import Counters
from services.websocket_listener.rows import (
    EVENT_COLUMNS, MESSAGE_COLUMNS, ORDER_COLUMNS, ListenerFill, PositionCrossCheck, message_from_row, order_event_row,
    order_progress, order_row, position_value, rows_json, wallet_row,
)

log = structlog.get_logger()

FILL_FEED_MAXLEN = 20_000  # entries kept per bot's fill feed (approximately: XADD MAXLEN ~)
RESULT_TTL_S = 86_400
OUTBOX_DRAIN_EVERY_S = 0.5
_OUTBOX_READ_RECEIPTS = 200  # receipts per read when announcing what a previous run left
MAX_RAW_CHARS = 100_000

# The hot statements live in PL/pgSQL functions (migrations 0033, 0035, 0036), whose plans PostgreSQL
# keeps per server connection: through PgBouncer's transaction mode a plain statement is planned every time.
# Fills alone (the benchmark's ceiling statement); the first parameter names the batch, kept across its
# retries: see migration 0035 (ingest receipts).
FILL_SQL = "SELECT exec_id FROM trading.ingest_fills(%s::uuid, %s::json) AS exec_id"
# A batch's orders and fills in one statement (migration 0036); orders and events NULL when it has none.
_BATCH_SQL = "SELECT exec_id FROM trading.ingest_batch(%s::uuid, %s::json, %s::json, %s::json) AS exec_id"
_ORDERS_SQL = "SELECT trading.ingest_orders(%s::json, %s::json)"
_WALLET_SQL = (
    "INSERT INTO trading.wallet_snapshots (bot_id, snapshot_time, account_type, total_equity, total_wallet_balance, "
    "total_margin_balance, total_available_balance, total_perp_upl, total_initial_margin, "
    "total_maintenance_margin, coins) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
)
_DEAD_SQL = (
    "INSERT INTO trading.dead_letters (source, bot_id, reason, raw, raw_sha256, occurrences) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[]) "
    "ON CONFLICT (raw_sha256) DO UPDATE SET occurrences = dead_letters.occurrences + EXCLUDED.occurrences, "
    "last_seen = now() RETURNING raw_sha256, (xmax = 0) AS first_time"
)
# Apply position snapshots, each only if it is not older than the one already applied (seq compared as
# decimal strings: Lua numbers are doubles). Per snapshot i: KEYS[2i-1] the position key, KEYS[2i] its
# seq key; ARGV[2i-1] the seq ("" when unknown), ARGV[2i] the value ("" = flat: delete). Returns 1
# (applied) or 0 (older) per snapshot. One command for all the snapshots of a batch in one db.
_POSITION_LUA = """
local out = {}
for i = 1, #KEYS / 2 do
  local cur = redis.call('GET', KEYS[2 * i])
  local seq, value = ARGV[2 * i - 1], ARGV[2 * i]
  if cur and seq ~= '' and (#cur > #seq or (#cur == #seq and cur > seq)) then
    out[i] = 0
  else
    if value == '' then redis.call('DEL', KEYS[2 * i - 1]) else redis.call('SET', KEYS[2 * i - 1], value) end
    if seq ~= '' then redis.call('SET', KEYS[2 * i], seq) end
    out[i] = 1
  end
end
return out
"""
# Every fill of a batch, in order, in one command (a pipeline of one PUBLISH per fill costs the client a
# command encoding and a reply parse each): on `fills_channel` and on its bot's durable feed. KEYS[1] the
# channel, KEYS[2..] the feeds; ARGV[1] the feeds' MAXLEN, then per fill: its feed's index in KEYS, its
# exec_id, its message. A script runs whole or not at all, so a fill is on both feeds or on neither.
_ANNOUNCE_LUA = """
local n = 0
for i = 2, #ARGV, 3 do
  redis.call('PUBLISH', KEYS[1], ARGV[i + 2])
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[1], '*', 'exec_id', ARGV[i + 1], 'fill', ARGV[i + 2])
  n = n + 1
end
return n
"""
_OUTBOX_SQL = (
    "SELECT r.batch_id, " + ", ".join(f"f.{c}" for c in MESSAGE_COLUMNS) + " FROM (SELECT batch_id, exec_ids, "
    "committed_at FROM trading.ingest_receipts ORDER BY committed_at, batch_id LIMIT %s) r "
    "LEFT JOIN trading.fills f ON f.exec_id = ANY (r.exec_ids) ORDER BY r.committed_at, r.batch_id, f.exec_time, f.seq"
)
_DRAIN_SQL = "SELECT trading.outbox_drain(%s::uuid[])"


@dataclass
class Ticket:
    """Completion of a group of submissions: resolved once everything queued before it is committed."""

    inserted: int = 0
    duplicates: int = 0
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    async def wait(self) -> Ticket:
        await asyncio.shield(self.done)
        return self


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    bot_id: str | None
    bad: BadFrame

    @property
    def raw(self) -> str:
        raw = _storable(self.bad.raw)
        return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + f"...[truncated {len(raw)} chars]"

    @property
    def reason(self) -> str:
        return _storable(self.bad.reason)[:500]

    @property
    def sha(self) -> str:
        return hashlib.sha256(f"{self.source}\n{self.bad.raw}".encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Fill:
    fill: ListenerFill
    ticket: Ticket | None
    message: str  # the fills_channel JSON, also the row of the batch insert


@dataclass(frozen=True, slots=True)
class _Order:
    bot_id: str
    order: OrderUpdate


@dataclass(frozen=True, slots=True)
class _Position:
    bot_id: str
    position: PositionSnapshot
    ticket: Ticket | None = None


@dataclass(frozen=True, slots=True)
class _Wallet:
    bot_id: str
    wallet: WalletSnapshot
    received_at: datetime


@dataclass(frozen=True, slots=True)
class _Barrier:
    ticket: Ticket
    result_key: str | None = None
    received: int = 0
    rejected: int = 0


Item = _Fill | _Order | _Position | _Wallet | DeadLetter | _Barrier


def _storable(text: str) -> str:
    """PostgreSQL text takes neither NUL nor lone surrogates: escape them, keep everything else verbatim."""
    text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _describe(record: _Fill | _Order | _Wallet) -> tuple[str, str]:
    if isinstance(record, _Fill):
        return record.fill.bot_id, dump_raw(record.fill.row())
    if isinstance(record, _Order):
        return record.bot_id, dump_raw(order_row(record.bot_id, record.order))
    return record.bot_id, dump_raw(wallet_row(record.bot_id, record.wallet, record.received_at))


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


class Ingestor:
    def __init__(self, pool: AsyncConnectionPool, redis_by_db: dict[int, Redis], bot_dbs: dict[str, int],
                 counters: Counters, *, max_batch: int = 1000, queue_size: int = 50_000, commits_in_flight: int = 2,
                 batches_unannounced: int = 4,
                 on_mismatch: Callable[[str], None] | None = None, fill_feed_maxlen: int = FILL_FEED_MAXLEN) -> None:
        self._pool = pool
        self._redis = redis_by_db
        self._platform = redis_by_db[0]
        self._bot_dbs = bot_dbs
        self.counters = counters
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_size)
        self._on_mismatch = on_mismatch or (lambda bot_id: None)
        self._cross_check = PositionCrossCheck()
        self._position_script = self._platform.register_script(_POSITION_LUA)
        self._announce_script = self._platform.register_script(_ANNOUNCE_LUA)
        self._fill_feed_maxlen = fill_feed_maxlen
        self._announced: list[uuid.UUID] = []  # receipts of announced batches, not yet deleted (the outbox)
        self.in_flight = 0  # items taken off the queue whose batch is not announced yet
        self.retrying = 0  # writes retrying after a database error (their receipts must not be pruned)
        self._commit_slots = asyncio.Semaphore(commits_in_flight)
        # Batches taken and not yet announced, at most this many: while Redis is away, committed batches
        # would otherwise pile up in memory without bound. At the bound the writer takes nothing more, the
        # queue fills, the streams stop being read (their connections are then replaced) and the REST
        # catch-up reads back, once Redis is back, what was never read.
        self._unannounced = asyncio.Semaphore(batches_unannounced)
        self._tail: asyncio.Task[None] | None = None  # the newest batch: its commit, then its announcement
        self._failure: asyncio.Future[None] | None = None  # set by the first batch that fails
        self._committing: dict[object, tuple[Any, asyncio.Event]] = {}  # batches committing: exec ids, done
        self._batches: dict[asyncio.Task[None], list[Item]] = {}  # taken off the queue, not yet announced
        self.newest_committed: dict[str, datetime] = {}  # per bot, the newest exec time known committed

    # ---- producers -----------------------------------------------------------------------

    async def put_fill(self, fill: ListenerFill, ticket: Ticket | None = None) -> None:
        self.counters.executions_received += 1
        await self._queue.put(_Fill(fill, ticket, fill.message()))

    async def put_order(self, bot_id: str, order: OrderUpdate) -> None:
        await self._queue.put(_Order(bot_id, order))

    async def put_position(self, bot_id: str, position: PositionSnapshot, ticket: Ticket | None = None) -> None:
        """A position snapshot, applied after the commit of everything queued before it. With a ticket,
        `inserted` counts it if applied and `duplicates` if older than what Redis holds."""
        await self._queue.put(_Position(bot_id, position, ticket))

    async def put_wallet(self, bot_id: str, wallet: WalletSnapshot, received_at: datetime) -> None:
        await self._queue.put(_Wallet(bot_id, wallet, received_at))

    async def put_dead(self, source: str, bot_id: str | None, bad: BadFrame) -> None:
        self.counters.dead_lettered += 1
        await self._queue.put(DeadLetter(source, bot_id, bad))

    async def barrier(self, ticket: Ticket | None = None, *, result_key: str | None = None,
                      received: int = 0, rejected: int = 0) -> Ticket:
        """Queue a marker; the returned ticket resolves when everything before it is committed."""
        ticket = ticket or Ticket()
        await self._queue.put(_Barrier(ticket, result_key, received, rejected))
        return ticket

    def pending(self) -> int:
        """Items not yet fully done: queued, being committed, or awaiting their post-commit step."""
        return self._queue.qsize() + self.in_flight

    def _held(self) -> list[Item]:
        """Everything queued or taken but not yet announced (the queue's own deque is read, not consumed)."""
        out: list[Item] = list(self._queue._queue)  # type: ignore[attr-defined]
        for batch in self._batches.values():
            out += batch
        return out

    def oldest_held(self) -> dict[str, datetime]:
        """Per bot, the oldest exec time of the fills held and not yet known committed (a scan of at most
        the queue bound plus two batches, done once a second by the watermark)."""
        out: dict[str, datetime] = {}
        for item in self._held():
            if isinstance(item, _Fill):
                bot_id, t = item.fill.bot_id, item.fill.execution.exec_time
                if bot_id not in out or t < out[bot_id]:
                    out[bot_id] = t
        return out

    def undrained(self) -> dict[str, Any]:
        """What is still held, by kind, with the oldest fill per bot (said at shutdown when left)."""
        kinds: dict[str, int] = {}
        for item in self._held():
            name = {"_Fill": "fills", "_Order": "orders", "_Position": "positions", "_Wallet": "wallets",
                    "DeadLetter": "dead_letters", "_Barrier": "barriers"}[type(item).__name__]
            kinds[name] = kinds.get(name, 0) + 1
        return {**kinds, "oldest_exec_time": {b: iso for b, iso in
                                               ((b, t.isoformat()) for b, t in self.oldest_held().items())}}

    async def stop_batches(self) -> None:
        """Cancel the batches still committing or announcing and wait until they are gone (before the pool
        closes under them). What they held is in the watermark: the next start's catch-up reads it again."""
        tasks = list(self._batches)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- the writer ------------------------------------------------------------------------

    async def run(self) -> None:
        """Take a batch off the queue as soon as a commit slot is free and start it. A batch that
        fails (a bug: the database's own refusals are isolated and dead-lettered, outages retried)
        stops the writer."""
        self._failure = asyncio.get_running_loop().create_future()
        await self.reannounce_outbox()
        while True:
            await self._unannounced.acquire()
            await self._commit_slots.acquire()
            get = asyncio.ensure_future(self._queue.get())
            await asyncio.wait({get, self._failure}, return_when=asyncio.FIRST_COMPLETED)
            if self._failure.done():
                get.cancel()
                self._failure.result()  # raises the batch's error
            first = get.result()
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            self.in_flight += len(batch)
            self._tail = asyncio.create_task(self._process(batch, self._tail))
            self._batches[self._tail] = batch
            self._tail.add_done_callback(self._batches.pop)

    async def _process(self, batch: list[Item], previous: asyncio.Task[None] | None) -> None:
        """Commit the batch (older batches may still be committing: up to `commits_in_flight` at
        once), then announce it once the previous batch is announced, so announcements keep the
        batch order and never overtake their own commit. A batch sharing a fill with an older batch
        still committing waits for it, so the fill is inserted (and counted) by the older one."""
        try:
            try:
                new_ids, others, fills, dup_in_batch, receipts = await self._commit_batch(batch)
            finally:
                self._commit_slots.release()
            if previous is not None:
                await previous
            await self._after_commit(batch, fills, dup_in_batch, new_ids, others)
            self._announced.extend(receipts)  # announced: the outbox may let these receipts go
        except Exception as exc:
            if self._failure is not None and not self._failure.done():
                self._failure.set_exception(exc)
            raise
        finally:
            self.in_flight -= len(batch)
            self._unannounced.release()

    async def _commit_batch(self, batch: list[Item]) -> tuple[set[str], asyncio.Task[tuple[set[str], set[str]]] | None,
                                                              dict[str, _Fill], list[_Fill], list[uuid.UUID]]:
        fills: dict[str, _Fill] = {}
        dup_in_batch: list[_Fill] = []
        orders: dict[str, _Order] = {}
        events: dict[tuple[Any, ...], _Order] = {}
        wallets: list[_Wallet] = []
        dead: dict[str, tuple[DeadLetter, int]] = {}
        for item in batch:
            if isinstance(item, _Fill):
                if item.fill.execution.exec_id in fills:
                    dup_in_batch.append(item)
                else:
                    fills[item.fill.execution.exec_id] = item
            elif isinstance(item, _Order):
                o = item.order
                prev = orders.get(o.order_id)
                if prev is None or order_progress(o) >= order_progress(prev.order):
                    orders[o.order_id] = item
                events[(o.order_id, o.order_status, o.cum_exec_qty, o.updated_time)] = item
            elif isinstance(item, _Wallet):
                wallets.append(item)
            elif isinstance(item, DeadLetter):
                prev_dead = dead.get(item.sha)
                dead[item.sha] = (item, (prev_dead[1] if prev_dead else 0) + 1)

        # A fill also in an older batch still committing waits for that batch: the earlier batch is the
        # one that inserts it (and counts it for its ticket), as if the batches had committed in turn.
        mine = fills.keys()
        older = [done for ids, done in self._committing.values() if not mine.isdisjoint(ids)]
        token, done = object(), asyncio.Event()
        receipts: list[uuid.UUID] = []
        self._committing[token] = (mine, done)
        try:
            for event in older:
                await event.wait()
            started = time.perf_counter()
            new_ids, others = await self._commit(list(fills.values()), list(orders.values()),
                                                 list(events.values()), wallets, list(dead.values()), receipts)
        finally:
            done.set()
            del self._committing[token]
        self.counters.batches += 1
        self.counters.db_wait_ms += round((time.perf_counter() - started) * 1000)
        return new_ids, others, fills, dup_in_batch, receipts

    async def _commit(self, fills: list[_Fill], orders: list[_Order], events: list[_Order], wallets: list[_Wallet],
                      dead: list[tuple[DeadLetter, int]], receipts: list[uuid.UUID],
                      ) -> tuple[set[str], asyncio.Task[tuple[set[str], set[str]]] | None]:
        """Fills and orders in one statement; wallet snapshots and dead letters (rare) in another
        transaction, on a second connection at once. The ids of the fills receipts written (the batch's
        outbox entries) are appended to `receipts`.

        The two share no invariant (wallet rows and dead letters never announce anything), so they
        commit independently and each is retried on its own. Returns once the fills are committed, with
        the other half still running: the fills are announced without waiting for it, and the batch's
        barriers wait for both.
        """
        others = None
        if wallets or dead:
            others = asyncio.create_task(self._commit_part([], [], [], wallets, dead, []))
        new_ids: set[str] = set()
        if fills or orders:
            try:
                new_ids, _ = await self._commit_part(fills, orders, events, [], [], receipts)
            except BaseException:
                if others is not None:
                    await asyncio.wait([others])
                raise
        return new_ids, others

    async def _commit_part(self, fills: list[_Fill], orders: list[_Order], events: list[_Order],
                           wallets: list[_Wallet], dead: list[tuple[DeadLetter, int]],
                           receipts: list[uuid.UUID]) -> tuple[set[str], set[str]]:
        try:
            return await self._retrying(fills, orders, events, wallets, dead, receipts)
        except psycopg.Error as exc:
            log.error("db_rejected_batch_isolating", error=_first_line(exc), rows=len(fills) + len(orders))
            return await self._isolate(fills, orders, events, wallets, dead, receipts)

    async def _retrying(self, fills: list[_Fill], orders: list[_Order], events: list[_Order],
                        wallets: list[_Wallet], dead: list[tuple[DeadLetter, int]],
                        receipts: list[uuid.UUID] | None = None) -> tuple[set[str], set[str]]:
        delay = 0.05
        batch_id = uuid.uuid4()  # the same for every attempt: a retry after a lost answer finds its receipt
        failed = False
        try:
            while True:
                try:
                    result = await self._transaction(fills, orders, events, wallets, dead, batch_id)
                    if fills and receipts is not None:
                        receipts.append(batch_id)
                    return result
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    # The database or PgBouncer is away, or the answer was lost: keep the batch and retry.
                    # Nothing is dropped, and fills a lost attempt did commit come back from its receipt.
                    if not failed:
                        failed = True
                        self.retrying += 1
                    self.counters.db_retries += 1
                    log.warning("db_unavailable_retrying", error=_first_line(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            if failed:
                self.retrying -= 1

    async def _isolate(self, fills: list[_Fill], orders: list[_Order], events: list[_Order], wallets: list[_Wallet],
                       dead: list[tuple[DeadLetter, int]], receipts: list[uuid.UUID]) -> tuple[set[str], set[str]]:
        """One transaction per record, so a row the database refuses is dead-lettered, not retried for ever."""
        new_ids: set[str] = set()
        first_dead: set[str] = set()
        rejected: list[tuple[DeadLetter, int]] = []
        singles: list[tuple[Any, tuple[list[_Fill], list[_Order], list[_Order], list[_Wallet]]]] = (
            [(f, ([f], [], [], [])) for f in fills]
            + [(o, ([], [o], [e for e in events if e.order.order_id == o.order.order_id], [])) for o in orders]
            + [(w, ([], [], [], [w])) for w in wallets])
        for record, args in singles:
            try:
                ids, _ = await self._retrying(*args, [], receipts)
                new_ids |= ids
            except psycopg.Error as exc:
                bot_id, raw = _describe(record)
                self.counters.dead_lettered += 1
                rejected.append((DeadLetter("db", bot_id, BadFrame(f"database refused: {_first_line(exc)}", raw)), 1))
        for letter in dead + rejected:
            try:
                _, first = await self._retrying([], [], [], [], [letter])
                first_dead |= first
            except psycopg.Error as exc:
                log.error("dead_letter_refused", error=_first_line(exc), source=letter[0].source)
        return new_ids, first_dead

    async def _transaction(self, fills: list[_Fill], orders: list[_Order], events: list[_Order],
                           wallets: list[_Wallet], dead: list[tuple[DeadLetter, int]],
                           batch_id: uuid.UUID) -> tuple[set[str], set[str]]:
        new_ids: set[str] = set()
        first_dead: set[str] = set()
        async with self._pool.connection() as conn:
            if not (wallets or dead):
                # One statement: its own transaction on an autocommit connection, one round trip
                # (BEGIN and COMMIT would be two more, through PgBouncer, before anything is announced).
                if fills:
                    new_ids = await self._insert_batch(conn, fills, orders, events, batch_id)
                elif orders:
                    await conn.execute(_ORDERS_SQL, self._order_params(orders, events))
            else:
                new_ids, first_dead = await self._in_transaction(conn, fills, orders, events, wallets, dead, batch_id)
        self.counters.fills_written += len(new_ids)
        self.counters.orders_written += len(orders)
        self.counters.wallet_snapshots += len(wallets)
        return new_ids, first_dead

    async def _insert_batch(self, conn: psycopg.AsyncConnection[Any], fills: list[_Fill], orders: list[_Order],
                            events: list[_Order], batch_id: uuid.UUID) -> set[str]:
        """The batch's fill rows are its fills_channel messages; its orders go in the same statement.
        Returns the exec_ids that were new (for a retry whose earlier attempt committed, those that
        attempt inserted)."""
        order_rows, event_rows = self._order_params(orders, events) if orders else (None, None)
        cur = await conn.execute(_BATCH_SQL, (batch_id, "[" + ",".join(f.message for f in fills) + "]",
                                              order_rows, event_rows))
        return {r[0] for r in await cur.fetchall()}

    @staticmethod
    def _order_params(orders: list[_Order], events: list[_Order]) -> tuple[str, str]:
        return (rows_json(ORDER_COLUMNS, [order_row(o.bot_id, o.order) for o in orders]),
                rows_json(EVENT_COLUMNS, [order_event_row(o.bot_id, o.order) for o in events]))

    async def _in_transaction(self, conn: psycopg.AsyncConnection[Any], fills: list[_Fill], orders: list[_Order],
                              events: list[_Order], wallets: list[_Wallet], dead: list[tuple[DeadLetter, int]],
                              batch_id: uuid.UUID) -> tuple[set[str], set[str]]:
        new_ids: set[str] = set()
        first_dead: set[str] = set()
        async with conn.transaction():
            if fills:
                new_ids = await self._insert_batch(conn, fills, orders, events, batch_id)
            elif orders:
                await conn.execute(_ORDERS_SQL, self._order_params(orders, events))
            for w in wallets:
                await conn.execute(_WALLET_SQL, wallet_row(w.bot_id, w.wallet, w.received_at))
            if dead:
                cols = list(zip(*[(d.source, d.bot_id, d.reason, d.raw, d.sha, n) for d, n in dead]))
                cur = await conn.execute(_DEAD_SQL, [list(c) for c in cols])
                first_dead = {sha for sha, first in await cur.fetchall() if first}
        return new_ids, first_dead

    async def _after_commit(self, batch: list[Item], fills: dict[str, _Fill], dup_in_batch: list[_Fill],
                            new_ids: set[str], others: asyncio.Task[tuple[set[str], set[str]]] | None) -> None:
        started = time.perf_counter()
        now = datetime.now(UTC)
        publish: list[_Fill] = []
        for exec_id, item in fills.items():
            if exec_id in new_ids:
                publish.append(item)
            else:
                self.counters.duplicates += 1
        self.counters.duplicates += len(dup_in_batch)
        for item in dup_in_batch:
            if item.ticket is not None:
                item.ticket.duplicates += 1
        barriers: list[_Barrier] = []
        dead_items: list[DeadLetter] = []
        dup_ids = {id(item) for item in dup_in_batch}
        latest: dict[tuple[str, str], _Position] = {}
        newest = self.newest_committed
        for item in batch:
            if isinstance(item, _Fill):
                t = item.fill.execution.exec_time
                if item.fill.bot_id not in newest or t > newest[item.fill.bot_id]:
                    newest[item.fill.bot_id] = t
                if id(item) in dup_ids:
                    continue
                is_new = item.fill.execution.exec_id in new_ids
                if is_new:
                    self._cross_check.add_fill(item.fill)
                if item.ticket is not None:
                    if is_new:
                        item.ticket.inserted += 1
                    else:
                        item.ticket.duplicates += 1
            elif isinstance(item, _Position):
                self._check_position(item)
                key = (item.bot_id, item.position.symbol)
                prev = latest.get(key)
                seq, prev_seq = item.position.seq, None if prev is None else prev.position.seq
                if prev is None or prev_seq is None or seq is None or seq >= prev_seq:
                    if prev is not None and prev.ticket is not None:
                        prev.ticket.duplicates += 1  # superseded within the batch
                    latest[key] = item
                else:
                    self.counters.positions_stale += 1
                    if item.ticket is not None:
                        item.ticket.duplicates += 1
            elif isinstance(item, DeadLetter):
                dead_items.append(item)
            elif isinstance(item, _Barrier):
                barriers.append(item)
        # Positions and announcements are independent of each other (both only follow the commit):
        # sent at once, so a fill waits for one Redis round trip, not two.
        await asyncio.gather(*([self._redis_retry(self._apply_positions, latest, now)] if latest else []),
                             *([self._redis_retry(self._announce, [(f.fill.bot_id, f.fill.execution.exec_id, f.message)
                                                                   for f in publish])] if publish else []))
        first_dead: set[str] = set() if others is None else (await others)[1]
        for item in dead_items:
            if item.sha in first_dead:
                first_dead.discard(item.sha)
                log.warning("dead_letter", source=item.source, bot_id=item.bot_id, reason=item.bad.reason,
                            raw=item.bad.raw[:300])
        for b in barriers:
            if b.result_key is not None:
                await self._redis_retry(self._write_result, b)
            if not b.ticket.done.done():
                b.ticket.done.set_result(None)
        self.counters.redis_wait_ms += round((time.perf_counter() - started) * 1000)

    async def _announce(self, fills: list[tuple[str, str, str]]) -> None:
        """(bot_id, exec_id, message) per fill, in order: on `fills_channel` and on `fills:{bot_id}`."""
        feeds: dict[str, int] = {}
        args: list[object] = [self._fill_feed_maxlen]
        for bot_id, exec_id, message in fills:
            args += [feeds.setdefault(bot_id, len(feeds) + 2), exec_id, message]
        await self._announce_script(keys=[FILLS_CHANNEL, *(fill_feed_key(b) for b in feeds)], args=args)

    # ---- the outbox (migration 0040): receipts of batches not yet announced ------------------------

    async def reannounce_outbox(self) -> int:
        """Announce the fills of every receipt a previous run left (committed, maybe never announced),
        then delete those receipts. Runs before the writer takes its first batch. Returns the fills."""
        total = receipts_seen = 0
        while True:
            rows = await self._db_retry(self._outbox_rows)
            if not rows:
                break
            batches: list[uuid.UUID] = []
            fills: list[tuple[str, str, str]] = []
            for row in rows:
                if not batches or batches[-1] != row["batch_id"]:
                    batches.append(row["batch_id"])
                if row["exec_id"] is not None:  # a receipt that inserted nothing has no fill
                    fills.append((row["bot_id"], row["exec_id"], message_from_row(row)))
            for i in range(0, len(fills), self._max_batch):
                await self._redis_retry(self._announce, fills[i:i + self._max_batch])
            await self._db_retry(self._drain, batches)
            total += len(fills)
            receipts_seen += len(batches)
        if receipts_seen:
            log.warning("outbox_reannounced", fills=total, receipts=receipts_seen)
        return total

    async def _outbox_rows(self) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_OUTBOX_SQL, (_OUTBOX_READ_RECEIPTS,))
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, r)) for r in await cur.fetchall()]

    async def _drain(self, batches: list[uuid.UUID]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_DRAIN_SQL, (batches,))

    async def drain_outbox(self) -> int:
        """Delete the receipts of batches announced since the last call (one statement). On failure they
        are kept for the next call: a receipt left behind is announced again after a restart, never lost."""
        taken, self._announced = self._announced, []
        if not taken:
            return 0
        try:
            await self._drain(taken)
        except (psycopg.Error, OSError):
            self._announced = taken + self._announced
            raise
        return len(taken)

    async def drain_outbox_forever(self, stop: asyncio.Event, every_s: float = OUTBOX_DRAIN_EVERY_S) -> None:
        while not stop.is_set():
            try:
                await self.drain_outbox()
            except (psycopg.Error, OSError) as exc:
                log.warning("outbox_drain_failed", error=_first_line(exc), waiting=len(self._announced))
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                pass

    async def _db_retry(self, fn: Callable[..., Any], *args: Any) -> Any:
        delay = 0.05
        while True:
            try:
                return await fn(*args)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                log.warning("db_unavailable_retrying", error=_first_line(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write_result(self, b: _Barrier) -> None:
        async with self._platform.pipeline(transaction=True) as pipe:
            pipe.hset(b.result_key, mapping={"received": b.received, "inserted": b.ticket.inserted,  # type: ignore[arg-type]
                                             "duplicates": b.ticket.duplicates, "rejected": b.rejected})
            pipe.expire(b.result_key, RESULT_TTL_S)  # type: ignore[arg-type]
            await pipe.execute()

    def _check_position(self, item: _Position) -> None:
        p = item.position
        expected = self._cross_check.check(item.bot_id, p)
        if expected is not None:
            self.counters.position_mismatches += 1
            log.warning("position_mismatch", bot_id=item.bot_id, symbol=p.symbol, seq=p.seq,
                        exchange_size=str(p.signed_size), from_fills=str(expected))
            self._on_mismatch(item.bot_id)

    async def _apply_positions(self, latest: dict[tuple[str, str], _Position], now: datetime) -> None:
        """The newest snapshot per (bot, symbol) of the batch, one script call per Redis db (all dbs at
        once), seq-guarded."""
        by_db: dict[int, list[_Position]] = {}
        for item in latest.values():
            by_db.setdefault(self._bot_dbs.get(item.bot_id, 0), []).append(item)
        calls = []
        for db, items in by_db.items():
            keys: list[str] = []
            args: list[str] = []
            for item in items:
                p = item.position
                keys += [position_key(item.bot_id, p.symbol), position_seq_key(item.bot_id, p.symbol)]
                args += ["" if p.seq is None else str(p.seq), position_value(p, now) or ""]
            calls.append(self._position_script(keys=keys, args=args, client=self._redis.get(db, self._platform)))
        outcomes = await asyncio.gather(*calls, return_exceptions=True)  # all settled before any retry
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for items, results in zip(by_db.values(), outcomes):
            for item, applied in zip(items, results):  # type: ignore[arg-type]
                if applied:
                    self.counters.positions_written += 1
                else:
                    self.counters.positions_stale += 1
                if item.ticket is not None:
                    if applied:
                        item.ticket.inserted += 1
                    else:
                        item.ticket.duplicates += 1

    async def _redis_retry(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        delay = 0.05
        while True:
            try:
                return await fn(*args, **kwargs)
            except (RedisError, OSError) as exc:
                log.warning("redis_unavailable_retrying", error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
