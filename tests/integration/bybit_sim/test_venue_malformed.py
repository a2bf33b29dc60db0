"""Malformed requests get Bybit-style errors; the venue keeps serving afterwards."""
from __future__ import annotations

import json
import time

import aiohttp
import pytest
import websockets

from services.bybit_sim.handle import VenueProcess
from shared.bybit.auth import rest_headers
from tests.integration.bybit_sim.conftest import KEY, SECRET

pytestmark = pytest.mark.integration


async def _post(s: aiohttp.ClientSession, venue: VenueProcess, path: str, body: bytes) -> tuple[int, dict]:
    headers = rest_headers(KEY, SECRET, int(time.time() * 1000), body.decode(errors="replace"))
    async with s.post(f"{venue.rest_url}{path}", data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _get(s: aiohttp.ClientSession, venue: VenueProcess, path: str, query: str) -> tuple[int, dict]:
    headers = rest_headers(KEY, SECRET, int(time.time() * 1000), query)
    async with s.get(f"{venue.rest_url}{path}?{query}", headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("body", [
    b"{not json", b"[1,2,3]", b'"text"', b"{}", b'{"category":"linear"}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market"}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":{"a":1}}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1e99999"}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"-5"}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001","positionIdx":1}',
    b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001","reduceOnly":"x"}',
])
async def test_bad_order_bodies_are_10001(venue: VenueProcess, body: bytes) -> None:
    async with aiohttp.ClientSession() as s:
        status, answer = await _post(s, venue, "/v5/order/create", body)
    assert (status, answer["retCode"]) == (200, 10001)
    assert set(answer) == {"retCode", "retMsg", "result", "retExtInfo", "time"}


async def test_bad_queries_unknown_paths_and_methods(venue: VenueProcess) -> None:
    async with aiohttp.ClientSession() as s:
        for path, query in (("/v5/execution/list", "category=linear&limit=abc"),
                            ("/v5/execution/list", "category=inverse"),
                            ("/v5/order/history", "category=linear&cursor=%00%01"),
                            ("/v5/position/list", "category=linear"),
                            ("/v5/account/wallet-balance", "accountType=SPOT")):
            status, answer = await _get(s, venue, path, query)
            assert (status, answer["retCode"]) == (200, 10001), (path, query)
        async with s.get(f"{venue.rest_url}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=7") as resp:
            assert (await resp.json())["retCode"] == 10001
        async with s.get(f"{venue.rest_url}/v5/nothing/here") as resp:
            assert resp.status == 404
        async with s.get(f"{venue.rest_url}/v5/order/create") as resp:
            assert resp.status == 405
        async with s.post(f"{venue.rest_url}/v5/order/create", data=b"{}") as resp:
            assert (await resp.json())["retCode"] == 10003  # no key at all


async def test_oversized_payloads(venue: VenueProcess) -> None:
    big = json.dumps({"category": "linear", "pad": "x" * 200_000}).encode()
    async with aiohttp.ClientSession() as s:
        status, answer = await _post(s, venue, "/v5/order/create", big)
        assert (status, answer["retCode"]) == (413, 10001)
        async with websockets.connect(venue.ws_public_url, max_size=None) as ws:
            await ws.send("x" * (2 << 20))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        async with s.get(f"{venue.rest_url}/v5/market/time") as resp:
            assert (await resp.json())["retCode"] == 0  # still serving
