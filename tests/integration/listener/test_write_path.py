"""The write path on the real stack (PgBouncer as listener_user, Redis): idempotence, publish-after-commit,
order lifecycle, position ordering, dead letters; and the fuzz test through the dispatcher."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bybit.records import BadFrame, Execution, OrderUpdate, PositionSnapshot
from shared.bybit.frames import classify_frame
from shared.db.pool import open_pool
from shared.redis_client import redis_for
from shared.settings import DatabaseSettings
from services.websocket_listener.counters import Counters
from services.websocket_listener.dispatch import Dispatcher, Source, WalletThrottle
from services.websocket_listener.ingest import FILLS_CHANNEL, Ingestor, Ticket
from services.websocket_listener.rows import ListenerFill
from tests.support.stack import TestStack, start_test_stack
from tests.unit.listener.test_classify_fuzz import frames

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"
BOT = "lxalgo_001"  # Redis db 1


def fixture_record(name: str) -> Any:
    [record] = classify_frame((FIXTURES / name).read_text())
    return record


EXEC: Execution = fixture_record("ws_account_execution.json")
ORDER: OrderUpdate = fixture_record("ws_account_order_filled.json")
POS: PositionSnapshot = fixture_record("ws_account_position.json")


class Harness:
    def __init__(self, stack: TestStack, db: DatabaseSettings | None = None) -> None:
        self.stack = stack
        self.db = db or stack.db  # the writer's way to the database (a test may put a proxy in it)
        self.counters = Counters()

    async def __aenter__(self) -> Harness:
        self.pool = await open_pool(self.db, "listener", min_size=1, max_size=3, autocommit=True)
        self.redis = {0: redis_for(self.stack.redis, 0), 1: redis_for(self.stack.redis, 1)}
        self.mismatches: list[str] = []
        self.ingest = Ingestor(self.pool, self.redis, {BOT: 1}, self.counters, max_batch=200,
                               on_mismatch=self.mismatches.append)
        self.dispatcher = Dispatcher(self.ingest, self.redis[0], self.counters, WalletThrottle(60.0, time.monotonic))
        self.writer = asyncio.create_task(self.ingest.run())
        self.sub = self.redis[0].pubsub()
        await self.sub.subscribe(FILLS_CHANNEL)
        await self.sub.get_message(timeout=1.0)  # the subscribe confirmation
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.cancel()
        await asyncio.gather(self.writer, return_exceptions=True)
        await self.sub.aclose()
        for r in self.redis.values():
            await r.aclose()
        await self.pool.close()

    async def published(self) -> list[dict[str, Any]]:
        out = []
        while (msg := await self.sub.get_message(ignore_subscribe_messages=True, timeout=0.2)) is not None:
            out.append(json.loads(msg["data"]))
        return out

    def owner_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.stack.db.dsn("owner", direct=True)) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
async def harness(clean_state: TestStack) -> AsyncIterator[Harness]:
    async with Harness(clean_state) as h:
        yield h


def execs(n: int, prefix: str = "x") -> list[Execution]:
    return [replace(EXEC, exec_id=f"{prefix}-{i}", seq=1000 + i, exec_time=EXEC.exec_time + timedelta(seconds=i))
            for i in range(n)]


async def test_each_execution_is_written_and_published_exactly_once(harness: Harness) -> None:
    batch = execs(50)
    ticket = Ticket()
    for e in batch + batch[:20]:  # duplicates inside the queue
        await harness.ingest.put_fill(ListenerFill(BOT, e, "ws"), ticket)
    await (await harness.ingest.barrier(ticket)).wait()
    again = Ticket()
    for e in batch[10:30]:  # and duplicates of committed rows
        await harness.ingest.put_fill(ListenerFill(BOT, e, "sync"), again)
    await (await harness.ingest.barrier(again)).wait()
    assert (ticket.inserted, ticket.duplicates, again.inserted, again.duplicates) == (50, 20, 0, 20)
    rows = harness.owner_query("SELECT exec_id, bot_id, exec_price, exec_qty, commission, source, close_reason "
                               "FROM trading.fills ORDER BY exec_id")
    assert sorted(r[0] for r in rows) == sorted(e.exec_id for e in batch)
    assert {r[1:] for r in rows} == {(BOT, Decimal("95900.1"), Decimal("0.5"), Decimal("26.3725275"), "ws", "manual")}
    published = await harness.published()
    assert sorted(m["exec_id"] for m in published) == sorted(e.exec_id for e in batch)
    assert harness.counters.fills_written == 50 and harness.counters.duplicates == 40


async def test_order_lifecycle_never_goes_backwards(harness: Harness) -> None:
    t = ORDER.updated_time
    new = replace(ORDER, order_status="New", cum_exec_qty=Decimal(0), updated_time=t - timedelta(seconds=1))
    partial = replace(ORDER, order_status="PartiallyFilled", cum_exec_qty=Decimal("0.05"))
    for o in (new, ORDER, partial, new):  # filled, then a late partial and a replayed New
        await harness.ingest.put_order(BOT, o)
        await (await harness.ingest.barrier()).wait()
    [(status, cum)] = harness.owner_query("SELECT status, cum_exec_qty FROM trading.orders WHERE order_id = %s",
                                          (ORDER.order_id,))
    assert (status, cum) == ("Filled", Decimal("0.100"))
    events = harness.owner_query("SELECT status FROM trading.order_events WHERE order_id = %s ORDER BY updated_time, "
                                 "trading.order_status_rank(status)", (ORDER.order_id,))
    assert [e[0] for e in events] == ["New", "PartiallyFilled", "Filled"]


async def test_positions_apply_after_commit_in_seq_order_and_flat_deletes(harness: Harness) -> None:
    r1 = harness.redis[1]
    key = f"position:{BOT}:ETHUSDT"
    await harness.ingest.put_position(BOT, replace(POS, seq=10, size=Decimal("2"), side="Buy"))
    await harness.ingest.put_position(BOT, replace(POS, seq=5, size=Decimal("9"), side="Buy"))  # stale
    await (await harness.ingest.barrier()).wait()
    value = json.loads(await r1.get(key))
    assert value["size"] == "2" and value["side"] == "Buy"
    assert await harness.redis[0].get(key) is None  # the bot's own db only
    await harness.ingest.put_position(BOT, replace(POS, seq=11, size=Decimal("0"), side=""))
    await harness.ingest.put_position(BOT, replace(POS, seq=7, size=Decimal("3"), side="Sell"))  # stale again
    await (await harness.ingest.barrier()).wait()
    assert await r1.get(key) is None
    assert harness.counters.positions_stale == 2


async def test_dead_letters_are_kept_once_with_a_count(harness: Harness) -> None:
    source = Source("ws:lxalgo_001", BOT)
    for _ in range(3):
        await harness.dispatcher.handle(source, "{broken")
    await harness.dispatcher.handle(source, json.dumps({"topic": "tickers.BTCUSDT", "data": {"symbol": "BTCUSDT"}}))
    await (await harness.ingest.barrier()).wait()
    rows = harness.owner_query("SELECT reason, raw, occurrences, bot_id FROM trading.dead_letters ORDER BY id")
    assert [(r[0], r[2]) for r in rows] == [("malformed JSON", 3), ("Ticker not expected on ws:lxalgo_001", 1)]
    assert rows[0][1] == "{broken" and rows[0][3] == BOT
    assert harness.counters.dead_lettered == 4


def _expected_dead(frame: str | bytes, private: bool) -> int:
    parsed = classify_frame(frame)
    if isinstance(parsed, BadFrame):
        return 1
    wrong = ("Ticker", "Kline", "PublicTrade") if private else (
        "Execution", "OrderUpdate", "PositionSnapshot", "WalletSnapshot", "FastExecution")
    return sum(isinstance(r, BadFrame) or type(r).__name__ in wrong for r in parsed)


async def _feed(stack: TestStack, batch: list[str | bytes]) -> tuple[int, int, int]:
    async with Harness(stack) as h:
        private, public = Source("ws:lxalgo_001", BOT), Source("ws:public")
        for i, frame in enumerate(batch):
            await h.dispatcher.handle(private if i % 2 == 0 else public, frame)
        await (await h.ingest.barrier()).wait()
        [(stored,)] = h.owner_query("SELECT coalesce(sum(occurrences), 0) FROM trading.dead_letters")
        assert not h.writer.done()
        return int(stored), h.counters.dead_lettered, h.counters.frames_received


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=40))
def test_fuzz_through_the_dispatcher_dead_letters_every_bad_frame(batch: list[str | bytes]) -> None:
    stack = start_test_stack()
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        conn.execute("TRUNCATE trading.dead_letters, trading.fills, trading.orders, trading.order_events, "
                     "trading.wallet_snapshots")
    expected = sum(_expected_dead(f, i % 2 == 0) for i, f in enumerate(batch))
    stored, counted, received = asyncio.run(_feed(stack, batch))
    assert received == len(batch)
    assert counted == expected and stored == expected
