"""Zero lost, zero duplicated: venue faults during a long stream, and kill -9 of the listener mid-stream.

The fault run uses the listener's production connection timing (ping every 20 s, dead after 30 s, 10 s
handshake, 0.5..30 s backoff) and a real 60 s silence of every connection, private and public, while the
stream goes on; the kill and SIGTERM runs keep the scaled-down timing (their faults do not depend on it).
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.redis_client import redis_for
from tests.integration.listener.conftest import KEYS, PRODUCTION_TIMING, ListenerProcess, api_key
from tests.integration.listener.helpers import (
    FillsSubscriber, db_fills, field_differences, log_events, normalise_redis_positions, redis_positions,
    replaced_after_dead, venue_positions, wait_for_count,
)
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
SILENCE_S = 60.0


async def counters(stack: TestStack) -> dict[str, int]:
    r = redis_for(stack.redis, 0)
    try:
        return {k: int(v) for k, v in (await r.hgetall("listener:counters")).items()}
    finally:
        await r.aclose()


async def assert_exact(stack: TestStack, admin: VenueAdmin, venue: VenueProcess, bot_id: str, db: int,
                       listener: Any) -> tuple[int, int]:
    truth = await admin.executions(api_key(bot_id))
    stored = await wait_for_count(stack, bot_id, len(truth), 60)
    rows = await asyncio.to_thread(db_fills, stack, bot_id)
    ids = [r["exec_id"] for r in rows]
    lost = len({e["execId"] for e in truth} - set(ids))
    duplicated = len(ids) - len(set(ids))
    assert (stored, lost, duplicated) == (len(truth), 0, 0), listener.log_tail()
    assert field_differences(truth, rows, bot_id) == []
    _, key, secret = KEYS[bot_id]
    await asyncio.sleep(1.0)  # the last position push follows the last fill
    assert normalise_redis_positions(await redis_positions(stack, bot_id, db)) == \
        await venue_positions(venue.rest_url, key, secret, SYMBOLS)
    return len(truth), lost


async def wait_replaced(listener: ListenerProcess, connections: list[str],
                        timeout_s: float) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Until each connection has been declared dead (no frame for too long) and a new one is up; the
    timeout only keeps a broken listener from hanging the run."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        text = listener.log_path.read_text(errors="replace")
        found = {c: replaced_after_dead(text, c) for c in connections}
        if all(found.values()):
            return {c: pair for c, pair in found.items() if pair is not None}
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"silent connections not replaced: {found}\n{listener.log_tail()}")
        await asyncio.sleep(0.5)


def log_time(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))


async def test_faults_during_2400_executions_lose_and_duplicate_nothing(make_listener: Any, clean_state: TestStack,
                                                                       venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "momentum_001", api_key("momentum_001")
    private, public = f"ws:{bot_id}", "ws:public"
    assert (PRODUCTION_TIMING["LISTENER_PING_INTERVAL_S"], PRODUCTION_TIMING["LISTENER_DEAD_AFTER_S"]) == \
        ("20.0", "30.0")
    listener = make_listener([bot_id], **PRODUCTION_TIMING)
    await listener.wait_healthy(clean_state, [bot_id])
    before = len(await admin.executions(key))
    async with FillsSubscriber(clean_state) as fills:
        # ~92 s of stream: it covers the reset, the clean close, the 60 s silence, the detection and
        # replacement of the silent connections, and the duplicated and reordered pushes that follow.
        gen = await admin.generate(key, count=2400, rate_per_s=26, symbols=SYMBOLS, prefix="flt")
        await asyncio.sleep(1.5)
        assert await admin.reset_connections(key, "private") == 1
        await asyncio.sleep(2.0)
        assert await admin.close_connections(None, "all") >= 1  # the public connection too
        await asyncio.sleep(2.0)
        await listener.wait_healthy(clean_state, [bot_id])  # the silence hits live connections
        silence_start = datetime.now(UTC)
        await admin.silence(SILENCE_S)  # every connection, private and public: no data, no pongs, no acks
        at_silence = (await admin.generation(gen))["done"]
        await asyncio.sleep(SILENCE_S)
        replaced = await wait_replaced(listener, [private, public], timeout_s=60.0)
        at_duplicate = (await admin.generation(gen))["done"]
        await admin.duplicate_pushes(2.5, key)
        await asyncio.sleep(2.5)
        await admin.reorder_pushes(2.5, key)
        status = await admin.wait_generation(gen, timeout_s=120)
        assert status["state"] == "done" and status["done"] == 2400
        total, lost = await assert_exact(clean_state, admin, venue, bot_id, 2, listener)
        await asyncio.sleep(0.5)
        published = fills.counts(bot_id)
    stats = await counters(clean_state)
    assert total - before >= 2400
    assert max(published.values()) == 1 and len(published) == total
    # 1 reset + 2 clean closes + 2 silent connections, and a catch-up after each private reconnect.
    assert stats["reconnects"] >= 5 and stats["duplicates"] > 0 and stats["catchups"] >= 3
    # Declared dead once each (by the silence), never on a connection that was only quiet.
    deads = Counter(e["connection"] for e in log_events(listener.log_path.read_text(), "connection_lost")
                    if e["error"].startswith("DeadConnection"))
    assert deads == {private: 1, public: 1}, listener.log_tail()
    # What happened inside the silence came from the REST catch-up; the replacement carries live pushes.
    rows = await asyncio.to_thread(db_fills, clean_state, bot_id)
    inside = Counter(r["source"] for r in rows
                     if silence_start + timedelta(seconds=1) < r["exec_time"] < silence_start + timedelta(seconds=59))
    after_up = max(log_time(up) for _, up in replaced.values())
    live_after = sum(1 for r in rows if r["exec_time"] > after_up and r["source"] == "ws")
    assert set(inside) == {"sync"} and live_after > 0, (inside, live_after)
    timing = ", ".join(f"{c} dead at +{(log_time(d) - silence_start).total_seconds():.1f}s, up again at "
                       f"+{(log_time(u) - silence_start).total_seconds():.1f}s" for c, (d, u) in replaced.items())
    print(f"\nfault run (listener ping {PRODUCTION_TIMING['LISTENER_PING_INTERVAL_S']}s, dead after "
          f"{PRODUCTION_TIMING['LISTENER_DEAD_AFTER_S']}s): faults injected: reset private, clean close all, "
          f"{SILENCE_S:.0f}s silence of all connections (stream at execution {at_silence}), duplicate 2.5s "
          f"(from execution {at_duplicate}), reorder 2.5s; silence: {timing}; fills inside the silence stored from "
          f"REST {inside['sync']}, live pushes stored after the replacement {live_after}")
    print(f"fault run: venue executions {total} (generated 2400), stored {total}, lost {lost}, duplicated 0, "
          f"published once each {len(published)}; listener counters: reconnects={stats['reconnects']} "
          f"duplicates_suppressed={stats['duplicates']} catchups={stats['catchups']} "
          f"catchup_rows_read={stats['catchup_rows']} position_mismatches={stats['position_mismatches']}")
    await listener.wait_healthy(clean_state, [bot_id])


async def test_kill_9_mid_stream_then_restart_recovers_the_gap(make_listener: Any, clean_state: TestStack,
                                                              venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "lxalgo_001", api_key("lxalgo_001")
    first = make_listener([bot_id])
    await first.wait_healthy(clean_state, [bot_id])
    async with FillsSubscriber(clean_state) as fills:
        gen = await admin.generate(key, count=1500, rate_per_s=150, symbols=SYMBOLS, prefix="k9")
        await asyncio.sleep(3.0)
        first.kill9()
        await asyncio.sleep(3.0)  # fills keep happening while nothing listens
        second = make_listener([bot_id])
        status = await admin.wait_generation(gen, timeout_s=60)
        assert status["state"] == "done"
        total, lost = await assert_exact(clean_state, admin, venue, bot_id, 1, second)
        await asyncio.sleep(0.5)
        published: Counter[str] = fills.counts(bot_id)
    # At least once: fills committed before the kill but announced (or not) without their outbox entry
    # being drained are announced again by the restart.
    truth = {e["execId"] for e in await admin.executions(key)}
    assert lost == 0 and set(published) == truth
    stats = await counters(clean_state)
    print(f"\nkill -9 run: venue executions {total}, stored {total}, lost 0, duplicated 0; announced {len(published)}, "
          f"{sum(published.values()) - len(published)} of them again after the restart; "
          f"after restart catchup_rows_read={stats['catchup_rows']}")
    assert second.terminate() == 0


async def test_sigterm_mid_stream_writes_everything_received_then_restart_completes(
        make_listener: Any, clean_state: TestStack, venue: VenueProcess, admin: VenueAdmin) -> None:
    bot_id, key = "shortseller_001", api_key("shortseller_001")
    first = make_listener([bot_id])
    await first.wait_healthy(clean_state, [bot_id])
    gen = await admin.generate(key, count=2000, rate_per_s=400, symbols=SYMBOLS, prefix="term")
    await asyncio.sleep(2.0)
    assert first.terminate() == 0
    [stopped] = [json.loads(line) for line in first.log_tail(1_000_000).splitlines()
                 if '"listener_stopped"' in line]
    # Every execution it had received was committed before it exited: the batch in flight and the queue.
    assert stopped["executions_received"] > 0
    assert stopped["executions_received"] == stopped["fills_written"] + stopped["duplicates"]
    second = make_listener([bot_id])
    assert (await admin.wait_generation(gen, timeout_s=60))["state"] == "done"
    await assert_exact(clean_state, admin, venue, bot_id, 0, second)
