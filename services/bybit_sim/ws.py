"""WebSocket side: connections, the Bybit op protocol (auth, subscribe, ping), and fault-aware sending."""
from __future__ import annotations

import asyncio
import collections
import json
import os
import socket
import struct
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web

from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import INTERVALS, wall_ms
from shared.bybit.auth import sign_ws_auth, signatures_equal

log = structlog.get_logger()

if TYPE_CHECKING:
    from services.bybit_sim.venue import Venue

PRIVATE_TOPICS = frozenset({"execution", "execution.fast", "order", "position", "wallet"})
MAX_FRAME_CHARS = 64 * 1024
MAX_QUEUED_FRAMES = 500_000


def valid_public_topic(topic: str) -> bool:
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "kline":
        return parts[1] in INTERVALS and parts[2] in INSTRUMENTS
    return len(parts) == 2 and parts[0] in ("tickers", "publicTrade") and parts[1] in INSTRUMENTS


class Conn:
    def __init__(self, venue: Venue, ws: web.WebSocketResponse, kind: str, transport: Any) -> None:
        self.venue = venue
        self.ws = ws
        self.kind = kind
        self.transport = transport
        self.conn_id = f"{os.urandom(10).hex()}-{kind[:3]}"
        self.api_key: str | None = None
        self.topics: set[str] = set()
        self.last_recv_ms = wall_ms()
        self._queue: collections.deque[str] = collections.deque()
        self._wake = asyncio.Event()
        self.closed = False

    def send(self, frame: str) -> None:
        if self.closed:
            return
        if len(self._queue) >= MAX_QUEUED_FRAMES:  # a consumer this slow is dropped, as Bybit does
            self.reset()
            return
        self._queue.append(frame)
        self._wake.set()

    def send_obj(self, obj: dict[str, Any]) -> None:
        self.send(json.dumps(obj))

    async def run_sender(self) -> None:
        faults = self.venue.faults
        held: str | None = None
        try:
            while not self.closed:
                if held is not None:
                    try:
                        await asyncio.wait_for(self._wake.wait(), 0.1)
                    except TimeoutError:
                        await self.ws.send_str(held)
                        held = None
                        continue
                else:
                    await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    frame = self._queue.popleft()
                    if faults.faults:
                        now = wall_ms()
                        if faults.active("silence", self.api_key, now):
                            continue
                        delay = faults.active("delay", self.api_key, now)
                        if delay:
                            await asyncio.sleep(delay.delay_ms / 1000)
                        if faults.active("reorder", self.api_key, now):
                            if held is None:
                                held = frame
                                continue
                            await self.ws.send_str(frame)
                            frame, held = held, None
                        if faults.active("duplicate", self.api_key, now):
                            await self.ws.send_str(frame)
                    await self.ws.send_str(frame)
                if held is not None and not faults.active("reorder", self.api_key, wall_ms()):
                    await self.ws.send_str(held)
                    held = None
        except Exception:  # the peer went away mid-send (reset, closing transport): stop sending
            self.closed = True

    def reset(self) -> None:
        """Abrupt drop with a TCP reset, like a network failure."""
        self.closed = True
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        if self.transport is not None:
            self.transport.abort()

    async def close_clean(self) -> None:
        self.closed = True
        await self.ws.close(code=1000, message=b"")


class Hub:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.conns: set[Conn] = set()
        self.private: dict[str, set[Conn]] = {}
        self.public: dict[str, set[Conn]] = {}

    def has_private(self, api_key: str) -> bool:
        return bool(self.private.get(api_key))

    def wants(self, api_key: str, topic: str) -> bool:
        return any(topic in c.topics for c in self.private.get(api_key, ()))

    def push_private(self, api_key: str, topic: str, frame: str) -> None:
        for c in self.private.get(api_key, ()):
            if topic in c.topics:
                c.send(frame)

    def push_public(self, topic: str, frame: str) -> None:
        for c in self.public.get(topic, ()):
            c.send(frame)

    def public_topics(self, prefix: str) -> list[str]:
        return [t for t, cs in self.public.items() if cs and t.startswith(prefix)]

    def add(self, conn: Conn) -> None:
        self.conns.add(conn)

    def remove(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn.api_key is not None:
            self.private.get(conn.api_key, set()).discard(conn)
        for t in conn.topics:
            self.public.get(t, set()).discard(conn)

    def select(self, api_key: str | None, channel: str) -> list[Conn]:
        return [c for c in self.conns if (channel == "all" or c.kind == channel)
                and (api_key is None or c.api_key == api_key)]

    async def idle_sweeper(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.venue.config.idle_timeout_s))
            cutoff = wall_ms() - int(self.venue.config.idle_timeout_s * 1000)
            for c in [c for c in self.conns if c.last_recv_ms < cutoff]:
                await c.close_clean()

    async def close_all(self) -> None:
        for c in list(self.conns):
            c.reset()


def _ack(conn: Conn, op: str, success: bool, ret_msg: str, req_id: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "conn_id": conn.conn_id}
    if req_id is not None:
        out["req_id"] = req_id
    out["op"] = op
    return out


def _auth(conn: Conn, msg: dict[str, Any]) -> dict[str, Any]:
    venue = conn.venue

    def fail(code: int, text: str) -> dict[str, Any]:
        return {"op": "auth", "success": False, "retCode": code, "retMsg": text, "connId": conn.conn_id}

    if conn.kind != "private":
        return fail(10001, "auth is only for the private channel")
    if conn.api_key is not None:
        return fail(10005, "Repeat auth")
    args = msg.get("args")
    if not isinstance(args, list) or len(args) != 3:
        return fail(10001, "Params Error")
    api_key, expires, signature = args
    if not isinstance(api_key, str) or not isinstance(signature, str) or isinstance(expires, bool):
        return fail(10001, "Params Error")
    try:
        expires_ms = int(expires)
    except (TypeError, ValueError):
        return fail(10001, "Params Error")
    acct = venue.engine.accounts.get(api_key)
    now = wall_ms()
    if acct is None or venue.faults.active("reject_auth", api_key, now):
        return fail(10003, "Invalid apikey")
    if expires_ms <= now:
        return fail(10002, "Request expired")
    if not signatures_equal(sign_ws_auth(acct.secret, expires_ms), signature):
        return fail(10004, "Invalid sign")
    conn.api_key = api_key
    venue.hub.private.setdefault(api_key, set()).add(conn)
    return {"op": "auth", "success": True, "retCode": 0, "retMsg": "", "connId": conn.conn_id}


def _subscribe(conn: Conn, msg: dict[str, Any], op: str) -> dict[str, Any]:
    req_id = msg.get("req_id")
    args = msg.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        return _ack(conn, op, False, "error:args must be a non-empty list of topics", req_id)
    if conn.kind == "private":
        if conn.api_key is None:
            return _ack(conn, op, False, "Request not authorized", req_id)
        bad = [a for a in args if a not in PRIVATE_TOPICS]
    else:
        bad = [a for a in args if not valid_public_topic(a)]
    if bad:
        return _ack(conn, op, False, f"Invalid topic: {bad[0][:100]}", req_id)
    hub = conn.venue.hub
    for topic in args:
        if op == "subscribe":
            conn.topics.add(topic)
            if conn.kind == "public":
                hub.public.setdefault(topic, set()).add(conn)
        else:
            conn.topics.discard(topic)
            if conn.kind == "public":
                hub.public.get(topic, set()).discard(conn)
    return _ack(conn, op, True, "", req_id)


def _ping(conn: Conn, msg: dict[str, Any]) -> dict[str, Any]:
    req_id = msg.get("req_id")
    if conn.kind == "private":
        out: dict[str, Any] = {}
        if req_id is not None:
            out["req_id"] = req_id
        out.update({"op": "pong", "args": [str(wall_ms())], "conn_id": conn.conn_id})
        return out
    return {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, "req_id": req_id if req_id is not None else "",
            "op": "ping"}


def handle_text(conn: Conn, text: str) -> dict[str, Any]:
    """One client frame -> one answer; malformed input gets a Bybit-style failure, never an exception."""
    try:
        return _handle_text(conn, text)
    except Exception as exc:  # a venue bug answers like Bybit's server error and keeps the connection
        log.error("ws_internal_error", error=repr(exc))
        return _ack(conn, "", False, "error:internal error", None)


def _handle_text(conn: Conn, text: str) -> dict[str, Any]:
    if len(text) > MAX_FRAME_CHARS:
        return _ack(conn, "", False, "error:message too large", None)
    try:
        msg = json.loads(text)
    except ValueError:
        return _ack(conn, "", False, "error:request not json", None)
    if not isinstance(msg, dict):
        return _ack(conn, "", False, "error:request must be a json object", None)
    op = msg.get("op")
    req_id = msg.get("req_id")
    if req_id is not None and not isinstance(req_id, (str, int)):
        req_id = None
        msg["req_id"] = None
    if not isinstance(op, str):
        return _ack(conn, "", False, "error:op missing", req_id)
    if op == "ping":
        return _ping(conn, msg)
    if op == "auth":
        return _auth(conn, msg)
    if op in ("subscribe", "unsubscribe"):
        return _subscribe(conn, msg, op)
    return _ack(conn, op[:50], False, f"error:handler not found,op:{op[:50]}", req_id)


async def serve_ws(request: web.Request, venue: Venue, kind: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=1 << 20, autoping=True)
    await ws.prepare(request)
    conn = Conn(venue, ws, kind, request.transport)
    venue.hub.add(conn)
    loop = asyncio.get_running_loop()
    sender = loop.create_task(conn.run_sender())
    try:
        async for msg in ws:
            conn.last_recv_ms = wall_ms()
            if msg.type == WSMsgType.TEXT:
                answer = handle_text(conn, msg.data)
                if answer.get("op") in ("subscribe", "unsubscribe") and venue.config.ack_delay_ms:
                    # Acks come after a network round trip on Bybit; pybit relies on that (it records a
                    # subscription only after sending it), so an instant ack can race it.
                    loop.call_later(venue.config.ack_delay_ms / 1000, conn.send_obj, answer)
                else:
                    conn.send_obj(answer)
            elif msg.type == WSMsgType.BINARY:
                conn.send_obj(_ack(conn, "", False, "error:binary frames are not supported", None))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        conn.closed = True
        venue.hub.remove(conn)
        conn._wake.set()
        sender.cancel()
    return ws
