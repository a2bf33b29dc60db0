"""Fault injection through the admin API, as the listener and reconciler tests will use it."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
import websockets

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.auth import rest_headers, sign_ws_auth
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration
A_KEY, A_SECRET = "fault-a", "fault-a-secret"
B_KEY, B_SECRET = "fault-b", "fault-b-secret"


@pytest.fixture
async def accounts(admin: VenueAdmin) -> None:
    existing = {a["api_key"] for a in await admin.accounts()}
    for key, secret in ((A_KEY, A_SECRET), (B_KEY, B_SECRET)):
        if key not in existing:
            await admin.add_account(key, secret)


async def _private(venue: VenueProcess, key: str, secret: str, topics: tuple[str, ...] = ("execution", "order",
                   "position", "wallet")) -> Any:
    ws = await websockets.connect(venue.ws_private_url)
    expires = int(time.time() * 1000) + 10_000
    await ws.send(json.dumps({"op": "auth", "args": [key, expires, sign_ws_auth(secret, expires)]}))
    assert json.loads(await ws.recv())["success"] is True
    await ws.send(json.dumps({"op": "subscribe", "args": list(topics)}))
    assert json.loads(await ws.recv())["success"] is True
    return ws


async def _frames(ws: Any, n: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), timeout_s)) for _ in range(n)]


def _buy(venue: VenueProcess, key: str, secret: str, link: str) -> None:
    http = pybit_http(venue, key, secret)
    http.place_order(category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty="0.01",
                     orderLinkId=link)


async def test_reset_drops_without_close_frame_and_close_is_clean(venue: VenueProcess, admin: VenueAdmin,
                                                                  accounts: None) -> None:
    a = await _private(venue, A_KEY, A_SECRET)
    b = await _private(venue, B_KEY, B_SECRET)
    assert await admin.reset_connections(api_key=A_KEY) == 1
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(a.recv(), 5)
    assert closed.value.rcvd is None  # no close frame: an abrupt drop
    await b.send(json.dumps({"op": "ping"}))
    assert json.loads(await b.recv())["op"] == "pong"  # other accounts are untouched
    assert await admin.close_connections(api_key=B_KEY) == 1
    with pytest.raises(websockets.ConnectionClosedOK):
        await asyncio.wait_for(b.recv(), 5)
    await a.close()


async def test_silence_then_recovery(venue: VenueProcess, admin: VenueAdmin, accounts: None) -> None:
    ws = await _private(venue, A_KEY, A_SECRET)
    await admin.silence(1.0, api_key=A_KEY)
    await ws.send(json.dumps({"op": "ping", "req_id": "lost"}))
    _buy(venue, A_KEY, A_SECRET, f"silent-{time.time_ns()}")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.5)
    await asyncio.sleep(0.6)
    await ws.send(json.dumps({"op": "ping", "req_id": "back"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["req_id"] == "back"  # what was pushed while silent is lost
    await ws.close()


async def test_duplicate_and_reorder(venue: VenueProcess, admin: VenueAdmin, accounts: None) -> None:
    ws = await _private(venue, A_KEY, A_SECRET)
    await admin.duplicate_pushes(30, api_key=A_KEY)
    _buy(venue, A_KEY, A_SECRET, f"dup-{time.time_ns()}")
    frames = await _frames(ws, 8)
    assert [f["topic"] for f in frames] == ["execution", "execution", "order", "order", "position", "position",
                                            "wallet", "wallet"]
    assert frames[0] == frames[1]
    await admin.clear_faults()
    await admin.reorder_pushes(30, api_key=A_KEY)
    _buy(venue, A_KEY, A_SECRET, f"reorder-{time.time_ns()}")
    assert [f["topic"] for f in await _frames(ws, 4)] == ["order", "execution", "wallet", "position"]
    await ws.close()


async def test_delay(venue: VenueProcess, admin: VenueAdmin, accounts: None) -> None:
    ws = await _private(venue, A_KEY, A_SECRET, ("execution",))
    await admin.delay_pushes(30, delay_ms=1500, api_key=A_KEY)
    link = f"delay-{time.time_ns()}"
    _buy(venue, A_KEY, A_SECRET, link)
    pending = asyncio.ensure_future(ws.recv())
    done, _ = await asyncio.wait({pending}, timeout=0.3)
    assert not done  # held back by the 1.5 s delay
    frame = json.loads(await asyncio.wait_for(pending, 5))
    assert frame["data"][0]["orderLinkId"] == link
    assert [f["kind"] for f in await admin.faults()] == ["delay"]
    await ws.close()


async def test_reject_auth_rate_limit_and_5xx(venue: VenueProcess, admin: VenueAdmin, accounts: None) -> None:
    query = "accountType=UNIFIED"

    async def wallet(session: aiohttp.ClientSession, key: str, secret: str) -> tuple[int, dict, Any]:
        headers = rest_headers(key, secret, int(time.time() * 1000), query)
        async with session.get(f"{venue.rest_url}/v5/account/wallet-balance?{query}", headers=headers) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else await resp.text()
            return resp.status, dict(resp.headers), body

    async with aiohttp.ClientSession() as s:
        await admin.reject_auth(30, api_key=A_KEY)
        assert (await wallet(s, A_KEY, A_SECRET))[2]["retCode"] == 10003
        assert (await wallet(s, B_KEY, B_SECRET))[2]["retCode"] == 0
        async with websockets.connect(venue.ws_private_url) as ws:
            expires = int(time.time() * 1000) + 10_000
            await ws.send(json.dumps({"op": "auth", "args": [A_KEY, expires, sign_ws_auth(A_SECRET, expires)]}))
            answer = json.loads(await ws.recv())
            assert (answer["success"], answer["retCode"]) == (False, 10003)
        await admin.clear_faults()
        await admin.rate_limit(30, api_key=A_KEY)
        status, headers, body = await wallet(s, A_KEY, A_SECRET)
        assert (status, body["retCode"], body["retMsg"]) == (200, 10006, "Too many visits!")
        assert headers["X-Bapi-Limit-Status"] == "0"
        assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > time.time() * 1000
        await admin.clear_faults()
        await admin.http_5xx(30, status=502)
        assert (await wallet(s, B_KEY, B_SECRET))[0] == 502
        await admin.clear_faults()
        assert (await wallet(s, A_KEY, A_SECRET))[2]["retCode"] == 0


async def test_admin_rejects_bad_fault_requests(venue: VenueProcess) -> None:
    async with aiohttp.ClientSession(headers={"X-Admin-Token": venue.admin_token}) as s:
        for body in ({"kind": "explode"}, {"kind": "silence"}, {"kind": "delay", "seconds": 1},
                     {"kind": "http_5xx", "seconds": 1, "status": 200}, [1, 2]):
            async with s.post(f"{venue.admin_url}/admin/faults", json=body) as resp:
                assert resp.status == 400 and (await resp.json())["retCode"] == 10001
        async with s.post(f"{venue.admin_url}/admin/faults", data=b"{nope",
                          headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
