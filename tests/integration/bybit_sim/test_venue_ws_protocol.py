"""The WebSocket op protocol at the frame level: auth outcomes, ping/pong shapes, refusals of bad input."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets

from services.bybit_sim.handle import VenueProcess
from shared.bybit.auth import sign_ws_auth
from tests.integration.bybit_sim.conftest import KEY, SECRET

pytestmark = pytest.mark.integration


async def _ask(ws: Any, frame: str | bytes) -> dict[str, Any]:
    await ws.send(frame)
    return json.loads(await ws.recv())


def _auth(key: str, secret: str, expires_ms: int | None = None) -> str:
    expires = expires_ms if expires_ms is not None else int(time.time() * 1000) + 5000
    return json.dumps({"op": "auth", "args": [key, expires, sign_ws_auth(secret, expires)]})


async def test_auth_outcomes(venue: VenueProcess) -> None:
    cases = [(_auth(KEY, "wrong"), 10004), (_auth("nobody", SECRET), 10003),
             (_auth(KEY, SECRET, int(time.time() * 1000) - 1000), 10002),
             (json.dumps({"op": "auth", "args": [KEY]}), 10001)]
    for frame, code in cases:
        async with websockets.connect(venue.ws_private_url) as ws:
            answer = await _ask(ws, frame)
            assert answer["op"] == "auth" and answer["success"] is False and answer["retCode"] == code
    async with websockets.connect(venue.ws_private_url) as ws:
        ok = await _ask(ws, _auth(KEY, SECRET))
        assert ok["success"] is True and ok["retCode"] == 0 and ok["connId"]


async def test_private_needs_auth_before_subscribe(venue: VenueProcess) -> None:
    async with websockets.connect(venue.ws_private_url) as ws:
        answer = await _ask(ws, json.dumps({"op": "subscribe", "req_id": "s1", "args": ["execution"]}))
        assert answer == {"success": False, "ret_msg": "Request not authorized", "conn_id": answer["conn_id"],
                          "req_id": "s1", "op": "subscribe"}
        await _ask(ws, _auth(KEY, SECRET))
        answer = await _ask(ws, json.dumps({"op": "subscribe", "req_id": "s2", "args": ["execution", "wallet"]}))
        assert answer["success"] is True and answer["req_id"] == "s2"
        answer = await _ask(ws, json.dumps({"op": "subscribe", "args": ["kline.1.BTCUSDT"]}))
        assert answer["success"] is False and "Invalid topic" in answer["ret_msg"]


async def test_ping_pong_shapes(venue: VenueProcess) -> None:
    async with websockets.connect(venue.ws_private_url) as ws:
        pong = await _ask(ws, json.dumps({"op": "ping", "req_id": "p1"}))
        assert pong["op"] == "pong" and pong["req_id"] == "p1" and pong["args"][0].isdigit() and pong["conn_id"]
    async with websockets.connect(venue.ws_public_url) as ws:
        pong = await _ask(ws, json.dumps({"op": "ping"}))
        assert pong == {"success": True, "ret_msg": "pong", "conn_id": pong["conn_id"], "req_id": "", "op": "ping"}


@pytest.mark.parametrize("frame, text", [
    ("{not json", "not json"), ("[1, 2]", "json object"), ('{"args": []}', "op missing"),
    ('{"op": "fly"}', "handler not found"), ('{"op": "subscribe", "args": "kline.1.BTCUSDT"}', "args"),
    ('{"op": "subscribe", "args": ["kline.2.BTCUSDT"]}', "Invalid topic"),
    ('{"op": "subscribe", "args": ["tickers.DOGEUSDT"]}', "Invalid topic"),
    ('{"op": "ping", "req_id": {"x": 1}}', "pong"),
    (json.dumps({"op": "subscribe", "args": ["x" * 70_000]}), "too large"),
    (b"\x00\x01binary", "binary"),
])
async def test_malformed_frames_get_errors_and_the_connection_survives(venue: VenueProcess, frame: Any,
                                                                        text: str) -> None:
    async with websockets.connect(venue.ws_public_url) as ws:
        answer = await _ask(ws, frame)
        assert text in answer["ret_msg"]
        if text != "pong":
            assert answer["success"] is False
        still = await _ask(ws, json.dumps({"op": "ping"}))
        assert still["ret_msg"] == "pong"


async def test_silent_clients_are_dropped_after_the_idle_timeout() -> None:
    with VenueProcess([("idle-key", "idle-secret")], extra_args=["--idle-timeout-s", "1"]) as venue:
        async with websockets.connect(venue.ws_public_url, ping_interval=None) as quiet, \
                websockets.connect(venue.ws_public_url, ping_interval=None) as chatty:
            closed = asyncio.ensure_future(quiet.wait_closed())
            for _ in range(40):
                if closed.done():
                    break
                assert (await _ask(chatty, json.dumps({"op": "ping"})))["ret_msg"] == "pong"
                await asyncio.sleep(0.1)
            assert closed.done() and quiet.close_code == 1000
            assert (await _ask(chatty, json.dumps({"op": "ping"})))["ret_msg"] == "pong"
