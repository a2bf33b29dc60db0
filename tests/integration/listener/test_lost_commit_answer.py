"""A fills batch whose commit answer is lost: the retry announces exactly what the lost attempt stored
(ingest receipts, migration 0035), over a real PgBouncer with a proxy that drops the answer."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import psycopg
import pytest

from services.websocket_listener.ingest import FILL_SQL, Ticket
from services.websocket_listener.rows import ListenerFill
from tests.integration.listener.test_write_path import BOT, Harness, execs
from tests.support.pg_answer_dropper import AnswerDropper
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


async def test_fills_committed_behind_a_lost_answer_are_published_once(clean_state: TestStack) -> None:
    db = clean_state.db
    async with AnswerDropper(db.pgbouncer_host, db.pgbouncer_port) as proxy:
        async with Harness(clean_state, db=db.model_copy(update={"pgbouncer_port": proxy.port})) as h:
            proxy.arm(b"ingest_batch")
            batch = execs(40, "lost")
            ticket = Ticket()
            for e in batch:
                await h.ingest.put_fill(ListenerFill(BOT, e, "ws"), ticket)
            await (await h.ingest.barrier(ticket)).wait()
            published = await h.published()
            stored = h.owner_query("SELECT exec_id FROM trading.fills")
            receipts = h.owner_query("SELECT cardinality(exec_ids) FROM trading.ingest_receipts")
    assert proxy.dropped == 1 and h.counters.db_retries >= 1
    assert sorted(r[0] for r in stored) == sorted(e.exec_id for e in batch)
    assert sorted(m["exec_id"] for m in published) == sorted(e.exec_id for e in batch)  # each once
    assert (ticket.inserted, ticket.duplicates, h.counters.fills_written) == (40, 0, 40)
    assert h.ingest.retrying == 0  # not left raised once the retried write got its answer
    assert sum(r[0] for r in receipts) == 40


def test_a_batch_id_answers_with_its_receipt_and_receipts_stay_until_drained(clean_state: TestStack) -> None:
    rows = "[" + ",".join(ListenerFill(BOT, e, "ws").message() for e in execs(5, "rcpt")) + "]"
    first, other = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(clean_state.db.dsn("listener"), autocommit=True) as conn:
        new = {r[0] for r in conn.execute(FILL_SQL, (first, rows))}
        again = {r[0] for r in conn.execute(FILL_SQL, (first, rows))}  # a retry of the same batch
        elsewhere = {r[0] for r in conn.execute(FILL_SQL, (other, rows))}  # the same rows in another batch
        [(stored,)] = conn.execute("SELECT count(*) FROM trading.fills").fetchall()
    assert new == again == {f"rcpt-{i}" for i in range(5)}
    assert (elsewhere, stored) == (set(), 5)
    with psycopg.connect(clean_state.db.dsn("owner", direct=True), autocommit=True) as owner:
        owner.execute("UPDATE trading.ingest_receipts SET committed_at = committed_at - %s WHERE batch_id = %s",
                      (timedelta(days=2), first))
    with psycopg.connect(clean_state.db.dsn("listener"), autocommit=True) as conn:
        # An old receipt is an announcement not confirmed: kept however old, deleted only when drained.
        kept = {r[0] for r in conn.execute("SELECT batch_id FROM trading.ingest_receipts")}
        [(drained,)] = conn.execute("SELECT trading.outbox_drain(%s::uuid[])", ([first],)).fetchall()
        left = {r[0] for r in conn.execute("SELECT batch_id FROM trading.ingest_receipts")}
    assert (kept, drained, left) == ({first, other}, 1, {other})


async def test_announced_batches_leave_the_outbox_and_feed_both_channels(clean_state: TestStack) -> None:
    async with Harness(clean_state) as h:
        batch = execs(30, "drain")
        ticket = Ticket()
        for e in batch:
            await h.ingest.put_fill(ListenerFill(BOT, e, "ws"), ticket)
        await (await h.ingest.barrier(ticket)).wait()
        assert h.owner_query("SELECT count(*) FROM trading.ingest_receipts") == [(1,)]  # announced, not drained yet
        assert await h.ingest.drain_outbox() == 1
        published = [m["exec_id"] for m in await h.published()]
        feed = await h.redis[0].xrange(f"fills:{BOT}")
        left = h.owner_query("SELECT count(*) FROM trading.ingest_receipts")
    assert left == [(0,)]
    assert published == [e.exec_id for e in batch]
    assert [f["exec_id"] for _, f in feed] == published
    assert [f["fill"] for _, f in feed] == [ListenerFill(BOT, e, "ws").message() for e in batch]


async def test_receipts_left_by_a_previous_run_are_announced_at_start(clean_state: TestStack) -> None:
    fills = [ListenerFill(BOT, e, "ws") for e in execs(7, "left")]
    with psycopg.connect(clean_state.db.dsn("listener"), autocommit=True) as conn:
        conn.execute(FILL_SQL, (uuid.uuid4(), "[" + ",".join(f.message() for f in fills[:4]) + "]")).fetchall()
        conn.execute(FILL_SQL, (uuid.uuid4(), "[" + ",".join(f.message() for f in fills[4:]) + "]")).fetchall()
        conn.execute(FILL_SQL, (uuid.uuid4(), "[" + fills[0].message() + "]")).fetchall()  # inserted nothing
    async with Harness(clean_state) as h:  # its writer announces the outbox before its first batch
        deadline = asyncio.get_running_loop().time() + 10
        while h.owner_query("SELECT count(*) FROM trading.ingest_receipts") != [(0,)]:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        published = await h.published()
        feed = await h.redis[0].xrange(f"fills:{BOT}")
    # The same text as the first announcement would have been, rebuilt from the stored rows.
    assert [json.dumps(m, separators=(",", ":")) for m in published] == [f.message() for f in fills]
    assert [f["fill"] for _, f in feed] == [f.message() for f in fills]
