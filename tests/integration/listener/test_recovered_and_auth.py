"""The reconciler's `ingest:executions` stream through the single writer, and rejected auth (keeps retrying)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.redis_client import redis_for
from tests.integration.listener.conftest import api_key
from tests.integration.listener.helpers import FillsSubscriber, count_fills, wait_for_count
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"
BOT = "shortseller_001"


def recovered_rows(prefix: str, n: int) -> list[dict[str, Any]]:
    """REST `/v5/execution/list` rows as the reconciler would forward them (ids unknown to the venue)."""
    base = json.loads((FIXTURES / "http_get_executions_funding.json").read_text())["result"]["list"]
    rows = []
    for i in range(n):
        row = dict(base[i % 2], execId=f"{prefix}-{i}", seq=9_000_000 + i, execTime=str(1_700_000_000_000 + i))
        rows.append(row)
    return rows


async def wait_result(r: Any, batch_id: str, timeout_s: float = 20.0) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (result := await r.hgetall(f"ingest:result:{batch_id}")):
        assert asyncio.get_running_loop().time() < deadline, f"no result for {batch_id}"
        await asyncio.sleep(0.1)
    return result


async def test_recovered_stream_entries_are_written_once_acked_after_commit_and_pending_reread(
        make_listener: Any, clean_state: TestStack) -> None:
    r = redis_for(clean_state.redis, 0)
    try:
        # An entry delivered to this consumer before a crash, never acknowledged: pending.
        await r.xgroup_create("ingest:executions", "listener", id="0", mkstream=True)
        await r.xadd("ingest:executions", {"bot_id": BOT, "batch_id": "b-pending",
                                           "executions": json.dumps(recovered_rows("pend", 3))})
        await r.xreadgroup("listener", "listener-1", {"ingest:executions": ">"}, count=10)
        assert (await r.xpending("ingest:executions", "listener"))["pending"] == 1

        async with FillsSubscriber(clean_state) as fills:
            listener = make_listener([BOT])
            await listener.wait_healthy(clean_state, [BOT])
            assert await wait_result(r, "b-pending") == {"received": "3", "inserted": "3", "duplicates": "0",
                                                         "rejected": "0"}
            rows = recovered_rows("rec", 4)
            await r.xadd("ingest:executions", {"bot_id": BOT, "batch_id": "b1", "executions": json.dumps(rows)})
            bad = [*rows[:2], {"execId": "broken"}]
            await r.xadd("ingest:executions", {"bot_id": BOT, "batch_id": "b2", "executions": json.dumps(bad)})
            await r.xadd("ingest:executions", {"bot_id": "nobody_001", "batch_id": "b3", "executions": "[]"})
            assert await wait_result(r, "b1") == {"received": "4", "inserted": "4", "duplicates": "0", "rejected": "0"}
            assert await wait_result(r, "b2") == {"received": "3", "inserted": "0", "duplicates": "2", "rejected": "1"}
            assert (await wait_result(r, "b3"))["rejected"] == "1"
            assert 0 < await r.ttl("ingest:result:b1") <= 86_400
            await asyncio.sleep(0.5)
            published = fills.counts(BOT)
        assert {e: published[e] for e in published if e.startswith(("pend-", "rec-"))} == \
            {f"pend-{i}": 1 for i in range(3)} | {f"rec-{i}": 1 for i in range(4)}
        assert (await r.xpending("ingest:executions", "listener"))["pending"] == 0
        with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as conn:
            sources = conn.execute("SELECT DISTINCT source FROM trading.fills WHERE exec_id LIKE 'rec-%'").fetchall()
            dead = conn.execute("SELECT source, reason FROM trading.dead_letters ORDER BY id").fetchall()
            funding = conn.execute("SELECT close_reason FROM trading.fills WHERE exec_id = 'rec-1'").fetchone()
        assert sources == [("sync",)] and funding == ("funding",)
        assert [d[0] for d in dead] == ["stream:ingest:executions"] * 2
    finally:
        await r.aclose()


async def test_entries_read_together_keep_their_own_results_in_stream_order(
        make_listener: Any, clean_state: TestStack) -> None:
    """Entries queued before the listener starts arrive in one read and share write batches; each
    still gets its own result, a row repeated by a later entry counts there as a duplicate, and all
    are acknowledged once committed."""
    r = redis_for(clean_state.redis, 0)
    try:
        await r.xgroup_create("ingest:executions", "listener", id="0", mkstream=True)
        rows = recovered_rows("grp", 12)
        entries = [rows[0:4], rows[4:8], [*rows[2:6], *rows[8:12]], [{"execId": "broken"}, rows[11]]]
        for n, batch in enumerate(entries):
            await r.xadd("ingest:executions", {"bot_id": BOT, "batch_id": f"g{n}", "executions": json.dumps(batch)})
        listener = make_listener([BOT])
        await listener.wait_healthy(clean_state, [BOT])
        assert await wait_result(r, "g0") == {"received": "4", "inserted": "4", "duplicates": "0", "rejected": "0"}
        assert await wait_result(r, "g1") == {"received": "4", "inserted": "4", "duplicates": "0", "rejected": "0"}
        assert await wait_result(r, "g2") == {"received": "8", "inserted": "4", "duplicates": "4", "rejected": "0"}
        assert await wait_result(r, "g3") == {"received": "2", "inserted": "0", "duplicates": "1", "rejected": "1"}
        deadline = asyncio.get_running_loop().time() + 20
        while (await r.xpending("ingest:executions", "listener"))["pending"]:
            assert asyncio.get_running_loop().time() < deadline, "entries not acknowledged after their commit"
            await asyncio.sleep(0.1)
        with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as conn:
            stored = conn.execute("SELECT count(*) FROM trading.fills WHERE exec_id LIKE 'grp-%'").fetchone()
        assert stored == (12,)
    finally:
        await r.aclose()


async def test_rejected_auth_is_retried_reported_and_recovered(make_listener: Any, clean_state: TestStack,
                                                               venue: VenueProcess, admin: VenueAdmin) -> None:
    key = api_key(BOT)
    await admin.reject_auth(8.0, key)
    listener = make_listener([BOT])
    await asyncio.sleep(2.0)
    down = listener.health()
    assert down.returncode == 1 and "auth rejected" in down.stdout
    gen = await admin.generate(key, count=50, rate_per_s=100, symbols=["BTCUSDT"], prefix="auth")
    await admin.wait_generation(gen)
    await listener.wait_healthy(clean_state, [BOT], timeout_s=20)
    truth = await admin.executions(key)
    assert await wait_for_count(clean_state, BOT, len(truth), 20) == len(truth)
    assert count_fills(clean_state, BOT) == len(truth)
    r = redis_for(clean_state.redis, 0)
    try:
        assert int(await r.hget("listener:counters", "auth_failures")) >= 2
    finally:
        await r.aclose()
    log = listener.log_tail(100_000)
    assert log.count('"auth_rejected"') == 1  # reported once per streak, not once per retry
    assert "ss-test-secret" not in log


async def test_position_snapshot_entries_are_applied_seq_guarded(make_listener: Any, clean_state: TestStack) -> None:
    """trade_sync's proposed position repair: REST position rows, applied like a catch-up snapshot."""
    bot = "momentum_001"  # Redis db 2; not streamed by this listener: any registered bot is accepted
    rows = json.loads((FIXTURES / "http_get_positions.json").read_text())["result"]["list"]
    btc, eth, sol = (dict(r) for r in rows)
    r0, r2 = redis_for(clean_state.redis, 0), redis_for(clean_state.redis, 2)
    try:
        await r2.set(f"position:{bot}:SOLUSDT", json.dumps({"size": "3", "side": "Buy"}))  # stale: exchange is flat
        await r2.set(f"listener:position_seq:{bot}:SOLUSDT", "1")
        await r2.set(f"listener:position_seq:{bot}:ETHUSDT", str(eth["seq"] + 1))  # Redis holds newer ETH
        listener = make_listener([BOT])
        await listener.wait_healthy(clean_state, [BOT])
        await r0.xadd("ingest:executions", {"kind": "position_snapshot", "bot_id": bot, "batch_id": "p1",
                                            "positions": json.dumps([btc, eth, sol, {"symbol": "X"}])})
        assert await wait_result(r0, "p1") == {"received": "4", "inserted": "2", "duplicates": "1", "rejected": "1"}
        held = json.loads(await r2.get(f"position:{bot}:BTCUSDT"))
        assert (held["size"], held["side"], held["avg_price"]) == ("0.5", "Buy", "50000.00")
        assert await r2.get(f"position:{bot}:SOLUSDT") is None
        assert await r2.get(f"position:{bot}:ETHUSDT") is None
        await r0.xadd("ingest:executions", {"kind": "teleport", "bot_id": bot, "batch_id": "p2", "positions": "[]"})
        assert (await wait_result(r0, "p2"))["rejected"] == "1"
    finally:
        await r0.aclose()
        await r2.aclose()
