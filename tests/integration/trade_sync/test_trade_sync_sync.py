"""sync: fills deleted behind the platform's back are found and restored; position drift is reported,
and repaired through the listener."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.parse_rows import parse_execution
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


def _corrupt_positions(r: redis.Redis, bot: str) -> dict[str, str]:
    """Misstate one open position's size and invent one the exchange does not have."""
    held = {k.split(":")[-1]: r.get(k) for k in r.scan_iter(f"position:{bot}:*")}
    flat = sorted({"BTCUSDT", "ETHUSDT", "SOLUSDT"} - set(held))
    expected_kinds: dict[str, str] = {}
    if held:
        symbol = sorted(held)[0]
        doc = json.loads(held[symbol] or "{}")
        doc["size"] = str(-2 * float(doc["size"]) if float(doc["size"]) else "1")
        r.set(f"position:{bot}:{symbol}", json.dumps(doc))
        expected_kinds[symbol] = "size"
    if flat:
        r.set(f"position:{bot}:{flat[0]}", json.dumps({"size": "0.5", "side": "Buy", "avg_price": "100"}))
        expected_kinds[flat[0]] = "stale_in_redis"
    assert expected_kinds
    return expected_kinds


def _bot_redis(stack: TestStack, db: int) -> redis.Redis:
    return redis.Redis(port=stack.redis.redis_port, db=db, decode_responses=True,
                       password=stack.redis.redis_password.get_secret_value())  # type: ignore[union-attr]


async def test_sync_reports_position_drift(listener: h.Listener, env: dict[str, str], venue: VenueProcess,
                                           clean_state: TestStack) -> None:
    bot = "momentum_001"
    r = _bot_redis(clean_state, 2)
    try:
        expected_kinds = _corrupt_positions(r, bot)
        res = h.run_cli(["sync", "--bot", bot, "--json"], {**env, "TRADE_SYNC_REPAIR_POSITIONS": "false"})
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


async def test_drift_is_repaired_through_the_real_listener(listener: h.Listener, env: dict[str, str],
                                                           venue: VenueProcess, clean_state: TestStack) -> None:
    """Repair is the default: trade_sync sends the exchange's position rows on the ingest stream and the
    listener (the only writer of position keys) puts Redis back in line with the exchange."""
    from decimal import Decimal

    from shared.bybit.rest_client import BybitRestClient
    bot = "momentum_001"
    r = _bot_redis(clean_state, 2)
    try:
        expected_kinds = _corrupt_positions(r, bot)
        res = h.run_cli(["sync", "--bot", bot, "--json"], env)
        held = {k.split(":")[-1]: Decimal(json.loads(r.get(k) or "{}")["size"])
                for k in r.scan_iter(f"position:{bot}:*")}
    finally:
        r.close()
    assert res.returncode == 0, res.stderr[-2000:]
    [outcome] = res.json()
    assert outcome["drift_found"] == len(expected_kinds) == outcome["drift_repaired"]
    async with BybitRestClient(venue.rest_url, h.api_key_of(bot), h.keys_env([bot])["MOMENTUM_BYBIT_API_SECRET"]) as c:
        rows = (await c.get("/v5/position/list", {"category": "linear", "settleCoin": "USDT"})).result["list"]
    on_exchange = {p["symbol"]: Decimal(p["size"]) * (1 if p["side"] == "Buy" else -1)
                   for p in rows if Decimal(p["size"]) != 0}
    assert held == on_exchange
    again = h.run_cli(["sync", "--bot", bot, "--json"], env)
    assert again.returncode == 0 and again.json()[0]["drift_found"] == 0
