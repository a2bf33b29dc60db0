"""A fills batch whose commit answer is lost: the retry announces exactly what the lost attempt stored
(ingest receipts, migration 0035), over a real PgBouncer with a proxy that drops the answer."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

from services.websocket_listener.ingest import FILL_SQL, Ticket
from services.websocket_listener.receipts import prune_forever
from services.websocket_listener.rows import Fill
from shared.db.pool import open_pool
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
                await h.ingest.put_fill(Fill(BOT, e, "ws"), ticket)
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


def test_a_batch_id_answers_with_its_receipt_and_old_receipts_are_pruned(clean_state: TestStack) -> None:
    rows = "[" + ",".join(Fill(BOT, e, "ws").message() for e in execs(5, "rcpt")) + "]"
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
        [(pruned,)] = conn.execute("SELECT trading.prune_ingest_receipts()").fetchall()
        left = {r[0] for r in conn.execute("SELECT batch_id FROM trading.ingest_receipts")}
    assert (pruned, left) == (1, {other})


async def test_receipts_are_not_pruned_while_a_write_is_retrying(clean_state: TestStack) -> None:
    rows = "[" + ",".join(Fill(BOT, e, "ws").message() for e in execs(2, "guard")) + "]"
    batch = uuid.uuid4()
    with psycopg.connect(clean_state.db.dsn("listener"), autocommit=True) as conn:
        conn.execute(FILL_SQL, (batch, rows)).fetchall()
    with psycopg.connect(clean_state.db.dsn("owner", direct=True), autocommit=True) as owner:
        owner.execute("UPDATE trading.ingest_receipts SET committed_at = committed_at - interval '1 hour'")

    def receipts() -> int:
        with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as owner:
            return owner.execute("SELECT count(*) FROM trading.ingest_receipts").fetchall()[0][0]

    pool = await open_pool(clean_state.db, "listener", min_size=1, max_size=1, autocommit=True)
    try:
        for retrying, left in ((True, 1), (False, 0)):
            stop = asyncio.Event()
            task = asyncio.create_task(prune_forever(pool, stop, lambda r=retrying: r, every_s=0.05))
            await asyncio.sleep(0.3)  # several rounds
            stop.set()
            await task
            assert receipts() == left
    finally:
        await pool.close()
