"""sync: fills deleted behind the platform's back are found and restored; position drift is reported."""
from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.messages import parse_execution, parse_position
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack
from tests.support.trade_sync_checks import differences, expected_row, stored_rows

BOT = "shortseller_001"


async def _recent_on_venue(venue: VenueProcess, bot_id: str, since: datetime) -> dict[str, dict]:
    async with VenueAdmin(venue.admin_url) as admin:
        rows = await admin.executions(h.api_key_of(bot_id))
    return {r["execId"]: expected_row(bot_id, r) for r in rows if parse_execution(r, "linear").exec_time >= since}


async def test_sync_restores_deleted_fills_and_status_shows_them(listener: h.Listener, env: dict[str, str],
                                                                 venue: VenueProcess, clean_state: TestStack) -> None:
    since = datetime.now(UTC) - timedelta(hours=23)
    async with VenueAdmin(venue.admin_url) as admin:
        gen_id = await admin.generate(h.api_key_of(BOT), 120, 400, symbols=("BTCUSDT", "ETHUSDT"))
        await admin.wait_generation(gen_id)
    expected = await _recent_on_venue(venue, BOT, since)
    owner = clean_state.db.dsn("owner", direct=True)
    deadline = time.monotonic() + 60
    while len(stored_rows(owner, since)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)  # the listener writes the live executions from its WebSocket
    assert differences(expected, stored_rows(owner, since)) == []

    with psycopg.connect(owner) as conn:
        deleted = [r[0] for r in conn.execute(
            "DELETE FROM trading.fills WHERE id IN (SELECT id FROM trading.fills WHERE bot_id = %s "
            "ORDER BY exec_id LIMIT 37) RETURNING exec_id", (BOT,)).fetchall()]
    assert len(deleted) == 37

    res = h.run_cli(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    by_bot = {o["bot_id"]: o for o in res.json()}
    assert by_bot[BOT]["missing_found"] == 37
    assert by_bot[BOT]["recovered"] == 37
    assert by_bot[BOT]["drift_found"] == 0
    assert all(o["missing_found"] == 0 for b, o in by_bot.items() if b != BOT)
    assert differences(expected, stored_rows(owner, since)) == []

    status = h.run_cli(["status", "--json"], env)
    assert status.returncode == 0, status.stderr
    mine = next(s for s in status.json() if s["bot_id"] == BOT)
    assert (mine["last_sync_status"], mine["last_sync_missing"], mine["last_sync_recovered"]) == ("ok", 37, 37)
    assert mine["gaps_found_total"] == 37 and mine["recovered_total"] == 37
    assert mine["fills"] == len(expected)

    table = h.run_cli(["status"], env)
    assert table.returncode == 0
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith(BOT))
    assert "37/37" in line and "ok" in line

    again = h.run_cli(["sync", "--bot", BOT, "--json"], env)
    assert again.returncode == 0
    assert again.json()[0]["missing_found"] == 0  # nothing left to recover


async def test_sync_reports_position_drift(listener: h.Listener, env: dict[str, str], venue: VenueProcess,
                                           clean_state: TestStack) -> None:
    bot = "momentum_001"
    r = redis.Redis(port=clean_state.redis.redis_port, db=2, decode_responses=True,
                    password=clean_state.redis.redis_password.get_secret_value())  # type: ignore[union-attr]
    try:
        held = {k.split(":")[-1]: r.get(k) for k in r.scan_iter(f"position:{bot}:*")}
        flat = sorted({"BTCUSDT", "ETHUSDT", "SOLUSDT"} - set(held))
        expected_kinds: dict[str, str] = {}
        if held:  # an open position whose size Redis now misstates
            symbol = sorted(held)[0]
            doc = json.loads(held[symbol] or "{}")
            doc["size"] = str(-2 * float(doc["size"]) if float(doc["size"]) else "1")
            r.set(f"position:{bot}:{symbol}", json.dumps(doc))
            expected_kinds[symbol] = "size"
        if flat:  # a position Redis holds although the exchange is flat
            r.set(f"position:{bot}:{flat[0]}", json.dumps({"size": "0.5", "side": "Buy", "avg_price": "100"}))
            expected_kinds[flat[0]] = "stale_in_redis"
        assert expected_kinds
        res = h.run_cli(["sync", "--bot", bot, "--json"], env)
    finally:
        r.close()
    assert res.returncode == 1  # reported, not silently accepted
    [outcome] = res.json()
    assert outcome["status"] == "partial"
    assert {d["symbol"]: d["kind"] for d in outcome["drift"]} == expected_kinds
    status = h.run_cli(["status", "--json"], env)
    mine = next(s for s in status.json() if s["bot_id"] == bot)
    assert mine["drift_found"] == len(expected_kinds)
    assert {d["symbol"] for d in mine["drift"]} == set(expected_kinds)


def _proposed_listener_peer(stop: threading.Event, platform: redis.Redis, bot_dbs: dict[str, redis.Redis]) -> None:
    """A protocol peer for the proposed `position_snapshot` entry (the real listener does not take it yet):
    applies the REST rows to `position:{bot}:{symbol}` and answers with the result hash."""
    while not stop.is_set():
        reply = platform.xreadgroup("listener", "peer", {"ingest:executions": ">"}, count=10, block=100)
        for _stream, entries in reply or []:
            for entry_id, f in entries:
                bot = f["bot_id"]
                if f.get("kind") == "position_snapshot":
                    rows = json.loads(f["positions"])
                    for row in rows:
                        p = parse_position(row, "linear")
                        key = f"position:{bot}:{p.symbol}"
                        if p.is_flat:
                            bot_dbs[bot].delete(key)
                        else:
                            bot_dbs[bot].set(key, json.dumps({"size": str(p.signed_size), "side": p.side,
                                                              "avg_price": str(p.avg_price)}))
                    result = {"received": len(rows), "inserted": len(rows), "duplicates": 0, "rejected": 0}
                else:
                    n = len(json.loads(f["executions"]))
                    result = {"received": n, "inserted": 0, "duplicates": n, "rejected": 0}
                platform.hset(f"ingest:result:{f['batch_id']}", mapping=result)
                platform.xack("ingest:executions", "listener", entry_id)


async def test_drift_is_repaired_through_the_stream_when_enabled(env: dict[str, str], clean_state: TestStack) -> None:
    bot = "momentum_001"
    kw = {"port": clean_state.redis.redis_port, "decode_responses": True,
          "password": clean_state.redis.redis_password.get_secret_value()}  # type: ignore[union-attr]
    platform, bot_db = redis.Redis(db=0, **kw), redis.Redis(db=2, **kw)
    platform.xgroup_create("ingest:executions", "listener", id="$", mkstream=True)
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):  # Redis says long 1 everywhere: wrong for every symbol
        bot_db.set(f"position:{bot}:{symbol}", json.dumps({"size": "1", "side": "Buy", "avg_price": "1"}))
    stop = threading.Event()
    peer = threading.Thread(target=_proposed_listener_peer, args=(stop, platform, {bot: bot_db}), daemon=True)
    peer.start()
    try:
        res = h.run_cli(["sync", "--bot", bot, "--json"], {**env, "TRADE_SYNC_REPAIR_POSITIONS": "true"})
    finally:
        stop.set()
        peer.join(5)
    assert res.returncode == 0, res.stderr[-2000:]
    [outcome] = res.json()
    assert outcome["drift_found"] == 3 and outcome["drift_repaired"] == 3
    held = {k.split(":")[-1] for k in bot_db.scan_iter(f"position:{bot}:*")}
    assert held == {d["symbol"] for d in outcome["drift"] if d["kind"] != "stale_in_redis"}
    platform.close()
    bot_db.close()
