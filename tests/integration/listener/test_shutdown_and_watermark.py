"""Shutdown and crash windows (issue 12 item 4).

- SIGTERM while commits cannot finish: what could not be written is named in one error line, not dropped
  without a word; the next start still stores everything.
- SIGKILL while old catch-up rows are in memory and newer fills are committed: the restart catch-up starts
  from the durable per-bot watermark (the oldest exec time not known committed), not from the newest
  stored fill minus the overlap, so the old rows are recovered.

Commits are held up for real: a transaction of the test inserts (uncommitted) a row with one exec_id of the
old rows, so the listener's insert of that batch waits on the unique index, or locks the table."""
from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.redis_client import redis_for
from tests.integration.listener.conftest import api_key
from tests.integration.listener.helpers import count_fills, db_fills, log_events
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


async def _until(predicate: Any, timeout_s: float, why: Any = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {why() if callable(why) else why}")
        await asyncio.sleep(0.2)


async def _received(stack: TestStack) -> int:
    r = redis_for(stack.redis, 0)
    try:
        return int(await r.hget("listener:counters", "executions_received") or 0)
    finally:
        await r.aclose()


def _terminate_lock_waiters(stack: TestStack) -> int:
    """End the listener's server backends waiting on a lock (the owner may not see them: the superuser)."""
    with psycopg.connect(host="127.0.0.1", port=stack.local.cfg.pg_port, user="postgres", dbname="trading_db",
                         password=stack.local.secrets()["PG_SUPERUSER_PASSWORD"], autocommit=True) as su:
        [(ended,)] = su.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE usename = 'listener_user' AND wait_event_type = 'Lock'").fetchall()
    return int(ended)


def _stored_ids(stack: TestStack, bot_id: str) -> set[str]:
    return {r["exec_id"] for r in db_fills(stack, bot_id)}


async def test_sigterm_while_commits_are_held_names_what_was_not_written_and_the_restart_stores_it(
        make_listener: Any, clean_state: TestStack, venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "momentum_001", api_key("momentum_001")
    first = make_listener([bot_id], LISTENER_SHUTDOWN_TIMEOUT_S="3")
    await first.wait_healthy(clean_state, [bot_id])
    with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as holder:
        holder.execute("LOCK TABLE trading.fills IN SHARE MODE")  # every insert waits
        gen = await admin.generate(key, count=600, rate_per_s=600, symbols=SYMBOLS, prefix="held")
        await _until(lambda: _at_least(clean_state, 300), 30, first.log_tail)
        await asyncio.to_thread(first.terminate, 30.0)
        holder.rollback()
    assert (await admin.wait_generation(gen, timeout_s=60))["state"] == "done"
    [undrained] = log_events(first.log_path.read_text(), "shutdown_undrained")
    assert undrained["level"] == "error" and undrained["fills"] > 0, first.log_tail()
    assert undrained["oldest_exec_time"][bot_id]
    truth = {e["execId"] for e in await admin.executions(key)}
    second = make_listener([bot_id])
    await second.wait_healthy(clean_state, [bot_id])
    await _until(lambda: _has_all(clean_state, bot_id, truth), 60, second.log_tail)
    assert second.terminate() == 0


async def _at_least(stack: TestStack, n: int) -> bool:
    return await _received(stack) >= n


async def _has_all(stack: TestStack, bot_id: str, truth: set[str]) -> bool:
    return await asyncio.to_thread(_stored_ids, stack, bot_id) >= truth


async def test_sigkill_with_old_catchup_rows_in_memory_recovers_them_from_the_watermark(
        make_listener: Any, clean_state: TestStack, venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "shortseller_001", api_key("shortseller_001")
    # the held catch-up batch is never announced, so newer batches may commit behind it only while the
    # bound on unannounced batches (4 by default: the Redis-outage memory bound) leaves room
    env = {"LISTENER_CATCHUP_OVERLAP_S": "1", "LISTENER_MAX_UNANNOUNCED_BATCHES": "100"}
    first = make_listener([bot_id], **env)
    await first.wait_healthy(clean_state, [bot_id])
    gen = await admin.generate(key, count=40, rate_per_s=100, symbols=SYMBOLS, prefix="wm1")
    assert (await admin.wait_generation(gen))["state"] == "done"
    seen = {e["execId"] for e in await admin.executions(key)}
    await _until(lambda: _has_all(clean_state, bot_id, seen), 30, first.log_tail)
    assert first.terminate() == 0
    # Fills while nothing listens: the next start reads them back over REST (the catch-up).
    gen = await admin.generate(key, count=40, rate_per_s=100, symbols=SYMBOLS, prefix="wm2")
    assert (await admin.wait_generation(gen))["state"] == "done"
    old = {e["execId"] for e in await admin.executions(key)} - seen
    await asyncio.sleep(3.0)  # the newer fills below are more than the overlap later
    with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as holder:
        holder.execute(
            "INSERT INTO trading.fills (bot_id, symbol, category, exec_id, order_id, side, exec_type, exec_price,"
            " exec_qty, exec_value, exec_time, commission, source) VALUES (%s, 'BTCUSDT', 'linear', %s, 'held',"
            " 'Buy', 'Trade', 1, 1, 1, now(), 0, 'sync')", (bot_id, min(old)))
        second = make_listener([bot_id], **env)
        await second.wait_healthy(clean_state, [bot_id])
        await _until(lambda: _at_least(clean_state, len(old)), 30, second.log_tail)  # the old rows, held
        gen = await admin.generate(key, count=30, rate_per_s=100, symbols=SYMBOLS, prefix="wm3")
        assert (await admin.wait_generation(gen))["state"] == "done"
        newer = {e["execId"] for e in await admin.executions(key)} - seen - old
        await _until(lambda: _has_all(clean_state, bot_id, newer), 30, second.log_tail)  # newer ones committed
        assert not (await asyncio.to_thread(_stored_ids, clean_state, bot_id)) & (old - {min(old)})
        second.kill9()
        # The machine died: the held insert must not commit behind the dead process (its server backend would
        # finish it once the lock is released), so its backend goes too.
        ended = _terminate_lock_waiters(clean_state)
        holder.rollback()
    assert ended == 1
    await asyncio.sleep(6.0)  # the killed listener's heartbeats expire: the next one is seen starting
    assert not (await asyncio.to_thread(_stored_ids, clean_state, bot_id)) & old
    third = make_listener([bot_id], **env)
    await third.wait_healthy(clean_state, [bot_id])
    truth = seen | old | newer
    await _until(lambda: _has_all(clean_state, bot_id, truth), 30,
                 lambda: f"missing {len(truth - _stored_ids(clean_state, bot_id))}\n{third.log_tail()}")
    assert await asyncio.to_thread(count_fills, clean_state, bot_id) == len(truth)
    assert third.terminate() == 0
