"""/flatten on the simulated venue over real HTTP: C2 (which holds no key) writes a durable request,
`trade_sync serve` (a real process with every bot's key) cancels the bot's open orders and closes its
positions reduce-only with the bot's own key, and C2 reports what is left. A trade_sync killed
(SIGKILL) after taking a request completes it when restarted, without opening anything."""
from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.db.pool import open_pool
from shared.queries.control import BotController
from shared.queries.flatten_requests import (FLATTEN_GROUP, FLATTEN_REQUESTS_STREAM, result_key, submit,
                                             wait_results)
from shared.redis_client import redis_for
from tests.integration.telegram.harness import register_bots
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


async def open_position(client: BybitRestClient, symbol: str, side: str, qty: str) -> None:
    await client.post("/v5/order/create", {"category": "linear", "symbol": symbol, "side": side,
                                           "orderType": "Market", "qty": qty, "orderLinkId": None})


async def positions(client: BybitRestClient) -> dict[str, Decimal]:
    resp = await client.get("/v5/position/list", {"category": "linear", "settleCoin": "USDT"})
    return {r["symbol"]: Decimal(r["size"]) for r in resp.result["list"] if Decimal(r["size"]) != 0}


async def open_orders(client: BybitRestClient) -> list[dict]:  # type: ignore[type-arg]
    return (await client.get("/v5/order/realtime", {"category": "linear", "settleCoin": "USDT"})).result["list"]


def bot_client(venue: VenueProcess, bot_id: str) -> BybitRestClient:
    _b, _p, key, secret = next(a for a in h.ACCOUNTS if a[0] == bot_id)
    return BybitRestClient(venue.rest_url, key, secret)


def start_venue() -> VenueProcess:
    return VenueProcess([(k, s) for _b, _p, k, s in h.ACCOUNTS], speed=1.0, seed=3)


def serve_env(st: TestStack, venue: VenueProcess) -> dict[str, str]:
    return h.base_env(st.env, venue)


async def pin_prices(venue: VenueProcess) -> None:
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.pin_price("BTCUSDT", "60000")
        await admin.pin_price("ETHUSDT", "3000")


async def test_flatten_is_executed_by_trade_sync(clean_state: TestStack, tmp_path: Path) -> None:
    st = clean_state
    register_bots(st)
    with start_venue() as venue:
        await pin_prices(venue)
        bot, other = bot_client(venue, "lxalgo_001"), bot_client(venue, "momentum_001")
        await open_position(bot, "BTCUSDT", "Buy", "0.010")
        await open_position(bot, "ETHUSDT", "Sell", "0.50")
        await open_position(other, "BTCUSDT", "Buy", "0.002")
        await bot.post("/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                            "orderType": "Limit", "qty": "0.001", "price": "50000"})
        assert await positions(bot) == {"BTCUSDT": Decimal("0.010"), "ETHUSDT": Decimal("0.50")}
        serve = h.start_serve(serve_env(st, venue), tmp_path / "serve.log", st.redis.redis_port,
                              st.redis.redis_password.get_secret_value())
        platform = redis_for(st.redis, 0)
        pool = await open_pool(st.db, "c2", max_size=2)
        try:
            # a malformed entry and a stale request first: logged / refused, acknowledged, nothing closed
            await platform.xadd(FLATTEN_REQUESTS_STREAM, {"bot_id": "lxalgo_001", "at": "not a time"})
            await platform.xadd(FLATTEN_REQUESTS_STREAM, {"request_id": "stale1", "bot_id": "lxalgo_001",
                                                          "by": "admin:1", "at": "2026-01-01T00:00:00Z"})
            stale = await wait_results(platform, {"lxalgo_001": "stale1"}, 20)
            assert await positions(bot) == {"BTCUSDT": Decimal("0.010"), "ETHUSDT": Decimal("0.50")}
            result = await BotController(pool, platform, flatten_wait_s=20).flatten("lxalgo_001", "admin:1")
            # the same request again (a sender's retry): acknowledged, not executed a second time
            (_id, done_req), = (await platform.xrevrange(FLATTEN_REQUESTS_STREAM, count=1))
            await platform.xadd(FLATTEN_REQUESTS_STREAM, done_req)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while not any(e.get("event") == "flatten_request_already_done" for e in serve.events()):
                assert loop.time() < deadline, serve.tail()
                await asyncio.sleep(0.1)
            remaining, orders = await positions(bot), await open_orders(bot)
            history = await bot.get("/v5/order/history", {"category": "linear", "limit": 50})
            untouched = await positions(other)
            control = await platform.get("control:lxalgo_001")
            pending = await platform.xpending(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP)
        finally:
            rc = serve.stop()
            await pool.close()
            await platform.aclose()
            await bot.close()
            await other.close()
    assert rc == 0, serve.tail()
    assert remaining == {} and orders == []
    assert untouched == {"BTCUSDT": Decimal("0.002")}
    assert (result.command, result.status) == ("flatten", "paused"), result
    assert result.detail == ("closed BTCUSDT long 0.010, ETHUSDT short 0.50; 1 open order(s) cancelled; "
                             "nothing left open")
    links = [o["orderLinkId"] for o in history.result["list"] if o["orderLinkId"].startswith("lxalgo_001-flatten-")]
    assert len(links) == 2 and all(len(link) <= 36 for link in links)
    assert control is not None and '"paused"' in control
    assert pending["pending"] == 0
    s = stale["lxalgo_001"]
    assert s is not None and s.status == "expired" and not s.closed and "not executed" in s.errors[0]
    bad = [e for e in serve.events() if e.get("event") == "flatten_request_bad"]
    assert len(bad) == 1 and bad[0]["error"] == "missing request_id", serve.tail()
    rows = st_rows(st, "SELECT user_id, role, command, args, result FROM trading.audit_log ORDER BY id")
    assert rows == [(0, "service", "flatten_execute", "lxalgo_001", "expired"),
                    (0, "service", "flatten_execute", "lxalgo_001", "ok")]


def st_rows(st: TestStack, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    import psycopg
    with psycopg.connect(st.db.dsn("owner", direct=True), autocommit=True) as conn:
        return conn.execute(sql).fetchall()


async def test_a_request_taken_by_a_killed_trade_sync_is_completed_after_restart(clean_state: TestStack,
                                                                                 tmp_path: Path) -> None:
    """The venue answers 503 to the bot's key, so trade_sync holds the request (retrying) when it is
    killed; restarted, it reads its unacknowledged entry again and completes it: the position is
    closed once, nothing opposite is opened, one result and one audit row."""
    st = clean_state
    register_bots(st)
    with start_venue() as venue:
        await pin_prices(venue)
        bot = bot_client(venue, "shortseller_001")
        await open_position(bot, "BTCUSDT", "Sell", "0.020")
        await bot.post("/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Sell",
                                            "orderType": "Limit", "qty": "0.001", "price": "70000"})
        env = {**serve_env(st, venue), "TRADE_SYNC_FLATTEN_DEADLINE_S": "120"}
        platform = redis_for(st.redis, 0)
        log1, log2 = tmp_path / "serve1.log", tmp_path / "serve2.log"
        password = st.redis.redis_password.get_secret_value()
        serve = h.start_serve(env, log1, st.redis.redis_port, password)
        try:
            async with VenueAdmin(venue.admin_url) as admin:
                await admin.http_5xx(60, api_key=h.api_key_of("shortseller_001"))
                ids = await submit(platform, ("shortseller_001",), "admin:1")
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while not any(e.get("event") == "flatten_attempt_incomplete" for e in serve.events()):
                    assert loop.time() < deadline, serve.tail()
                    await asyncio.sleep(0.1)
                taken = await platform.xpending(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP)
                serve.kill()
                assert taken["pending"] == 1 and not await platform.exists(result_key(ids["shortseller_001"]))
                await admin.clear_faults()
                assert await positions(bot) == {"BTCUSDT": Decimal("0.020")}  # nothing closed yet
            serve = h.start_serve(env, log2, st.redis.redis_port, password)
            results = await wait_results(platform, ids, 30)
            left, orders = await positions(bot), await open_orders(bot)
            after = await platform.xpending(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP)
            history = await bot.get("/v5/order/history", {"category": "linear", "limit": 50})
        finally:
            serve.stop()
            await platform.aclose()
            await bot.close()
    r = results["shortseller_001"]
    assert r is not None and r.clean, (r, serve.tail())
    assert (r.status, r.closed, r.left_positions, r.left_orders) == ("done", (("BTCUSDT", "Sell", Decimal("0.020")),),
                                                                     (), 0)
    assert left == {} and orders == [] and after["pending"] == 0
    filled = [o for o in history.result["list"] if o["orderLinkId"].startswith("shortseller_001-flatten-")
              and o["orderStatus"] == "Filled"]
    assert [(o["side"], Decimal(o["qty"])) for o in filled] == [("Buy", Decimal("0.020"))]
    assert st_rows(st, "SELECT role, command, args, result FROM trading.audit_log ORDER BY id") == [
        ("service", "flatten_execute", "shortseller_001", "ok")]
    assert any(e.get("event") == "flatten_request_taken" for e in h.Serve(serve.proc, log2).events())
