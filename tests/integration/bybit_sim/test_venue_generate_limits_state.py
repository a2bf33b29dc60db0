"""Execution generation, Bybit's rate limits, funding on the venue clock, restarts, determinism, the CLI."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
import websockets
from pybit.exceptions import InvalidRequestError

from services.bybit_sim.handle import REPO_ROOT, VenueAdmin, VenueProcess
from shared.bybit.auth import rest_headers, sign_ws_auth
from tests.integration.bybit_sim.conftest import (FAST_KEY, FAST_SECRET, LIM_KEY, LIM_OTHER_KEY, LIM_OTHER_SECRET,
                                                  LIM_SECRET, pybit_http)

pytestmark = pytest.mark.integration


async def _private(url: str, key: str, secret: str, topics: list[str]) -> Any:
    ws = await websockets.connect(url, max_size=None)
    expires = int(time.time() * 1000) + 10_000
    await ws.send(json.dumps({"op": "auth", "args": [key, expires, sign_ws_auth(secret, expires)]}))
    await ws.recv()
    await ws.send(json.dumps({"op": "subscribe", "args": topics}))
    await ws.recv()
    return ws


async def test_generate_pushes_real_executions(fast_venue: VenueProcess) -> None:
    ws = await _private(fast_venue.ws_private_url, FAST_KEY, FAST_SECRET, ["execution"])
    async with VenueAdmin(fast_venue.admin_url) as admin:
        before = len(await admin.executions(FAST_KEY))
        gen_id = await admin.generate(FAST_KEY, count=600, rate_per_s=3000, symbols=["BTCUSDT", "ETHUSDT"],
                                      prefix="bench")
        received: list[dict] = []
        while len(received) < 600:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            received += frame["data"]
        status = await admin.wait_generation(gen_id)
        truth = (await admin.executions(FAST_KEY))[before:]
    await ws.close()
    assert (status["state"], status["done"]) == ("done", 600)
    assert [e["orderLinkId"] for e in received] == [f"bench-gen-{n}" for n in range(600)]
    assert [e["execId"] for e in received] == [e["execId"] for e in truth]
    assert status["exec_ids"] == [e["execId"] for e in truth]
    assert {e["symbol"] for e in received} == {"BTCUSDT", "ETHUSDT"}
    assert [e["side"] for e in received[:4]] == ["Buy", "Sell", "Buy", "Sell"]


async def test_generate_rejects_bad_requests(fast_venue: VenueProcess) -> None:
    async with aiohttp.ClientSession(headers={"X-Admin-Token": fast_venue.admin_token}) as s:
        for body in ({"api_key": "nobody", "count": 1}, {"api_key": FAST_KEY, "count": 0},
                     {"api_key": FAST_KEY, "count": 1, "symbols": ["DOGEUSDT"]},
                     {"api_key": FAST_KEY, "count": 1, "rate_per_s": -1}):
            async with s.post(f"{fast_venue.admin_url}/admin/generate", json=body) as resp:
                assert resp.status == 400
        async with s.get(f"{fast_venue.admin_url}/admin/generate/gen-999") as resp:
            assert resp.status == 404


async def test_per_account_order_limit_with_headers(limited_venue: VenueProcess) -> None:
    body = json.dumps({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                       "qty": "0.001", "price": "1000.0"})

    async def create(s: aiohttp.ClientSession, key: str, secret: str) -> tuple[int, str, int, int]:
        headers = rest_headers(key, secret, int(time.time() * 1000), body)
        async with s.post(f"{limited_venue.rest_url}/v5/order/create", data=body, headers=headers) as resp:
            return ((await resp.json())["retCode"], resp.headers["X-Bapi-Limit"],
                    int(resp.headers["X-Bapi-Limit-Status"]), int(resp.headers["X-Bapi-Limit-Reset-Timestamp"]))

    async with aiohttp.ClientSession() as s:
        answers = await asyncio.gather(*(create(s, LIM_KEY, LIM_SECRET) for _ in range(25)))
        assert (await create(s, LIM_OTHER_KEY, LIM_OTHER_SECRET))[0] == 0  # limits are per account
    accepted = [a for a in answers if a[0] == 0]
    refused = [a for a in answers if a[0] == 10006]
    assert len(accepted) + len(refused) == 25 and 10 <= len(accepted) <= 20 and refused
    assert all(a[1] == "10" for a in answers)
    assert 9 in {a[2] for a in accepted} and all(a[2] == 0 for a in refused)
    assert all(a[3] % 1000 == 0 and a[3] > time.time() * 1000 - 5000 for a in answers)
    pybit_http(limited_venue, LIM_KEY, LIM_SECRET).cancel_all_orders(category="linear", settleCoin="USDT")


async def test_funding_every_8_venue_hours(limited_venue: VenueProcess) -> None:
    ws = await _private(limited_venue.ws_private_url, LIM_OTHER_KEY, LIM_OTHER_SECRET, ["execution"])
    http = pybit_http(limited_venue, LIM_OTHER_KEY, LIM_OTHER_SECRET)
    http.place_order(category="linear", symbol="SOLUSDT", side="Sell", orderType="Market", qty="10.0")
    funding: list[dict] = []
    while len(funding) < 2:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        funding += [e for e in frame["data"] if e["execType"] == "Funding"]
    await ws.close()
    assert all((f["symbol"], f["side"], f["execQty"], f["feeRate"]) == ("SOLUSDT", "Sell", "10.0", "0.0001")
               for f in funding)
    assert all(f["execFee"].startswith("-") for f in funding)  # shorts receive a positive rate
    assert funding[0]["execId"] != funding[1]["execId"]
    http.place_order(category="linear", symbol="SOLUSDT", side="Buy", orderType="Market", qty="10.0",
                     reduceOnly=True)


async def test_restart_keeps_state_and_kill_resumes_from_snapshot() -> None:
    with VenueProcess([("rs-key", "rs-secret")], speed=1.0, seed=4) as venue:
        http = pybit_http(venue, "rs-key", "rs-secret")
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.002",
                         orderLinkId="rs-1")
        venue.restart()
        http.endpoint = venue.rest_url
        assert [e["orderLinkId"] for e in http.get_executions(category="linear")["result"]["list"]] == ["rs-1"]
        with pytest.raises(InvalidRequestError) as err:  # the orderLinkId is still known
            http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.002",
                             orderLinkId="rs-1")
        assert err.value.status_code == 110072
        async with VenueAdmin(venue.admin_url) as admin:
            await admin.snapshot()
        http.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.002",
                         orderLinkId="rs-2")
        venue.kill()
        venue.start()
        links = [e["orderLinkId"] for e in http.get_executions(category="linear")["result"]["list"]]
        assert links == ["rs-1"]  # rs-2 happened after the last snapshot, so the crash lost it
        pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert (pos["side"], pos["size"]) == ("Buy", "0.002")


def _session(venue: VenueProcess) -> list[tuple]:
    http = pybit_http(venue, "det-key", "det-secret")
    for n, (side, qty) in enumerate([("Buy", "0.010"), ("Buy", "0.005"), ("Sell", "0.020"), ("Buy", "0.005")]):
        http.place_order(category="linear", symbol="BTCUSDT", side=side, orderType="Market", qty=qty,
                         orderLinkId=f"det-{n}")
    rows = http.get_executions(category="linear", limit=100)["result"]["list"]
    return [tuple(v for k, v in sorted(e.items()) if k != "execTime") for e in rows]


async def test_same_seed_same_orders_same_executions() -> None:
    with VenueProcess([("det-key", "det-secret")], seed=11, speed=1.0, partial_fills=True) as one, \
            VenueProcess([("det-key", "det-secret")], seed=11, speed=1.0, partial_fills=True) as two:
        for venue in (one, two):
            async with VenueAdmin(venue.admin_url) as admin:
                await admin.pin_price("BTCUSDT", "60000.5")
        first, second = _session(one), _session(two)
    assert len(first) == 8 and first == second  # partial fills: two executions per order


def test_bad_cli_arguments_exit_2_with_one_line() -> None:
    for args in (["serve", "--speed", "fast"], ["serve", "--accounts", "nocolon"], ["serve", "--port", "99999"],
                 ["seed-history", "--account", "k:s"], ["launch"]):
        proc = subprocess.run([sys.executable, "-m", "services.bybit_sim", *args], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("bybit_sim: error:"), proc.stderr


async def test_per_ip_limit_is_http_403(limited_venue: VenueProcess) -> None:
    async def status(s: aiohttp.ClientSession) -> int:
        async with s.get(f"{limited_venue.rest_url}/v5/market/time") as resp:
            return resp.status

    async with aiohttp.ClientSession() as s:
        statuses = await asyncio.gather(*(status(s) for _ in range(650)))
    # Kept last in the module: the IP stays limited for the rest of the 5-second window.
    assert 403 in statuses and 300 <= statuses.count(200) <= 600
