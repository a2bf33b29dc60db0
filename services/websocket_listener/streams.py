"""WebSocket connections to Bybit: auth, subscribe, heartbeat, dead-connection detection, reconnect (IO only)."""
from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
import websockets
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from shared.bybit.auth import sign_ws_auth
from shared.bybit.records import AuthResult, SubscribeResult
from services.websocket_listener.counters import Counters
from services.websocket_listener.dispatch import Dispatcher, Source

log = structlog.get_logger()

PRIVATE_TOPICS = ("execution", "order", "position", "wallet")
MAX_ARGS_PER_SUBSCRIBE = 10
AUTH_EXPIRES_MS = 10_000


class AuthRejected(Exception):
    pass


class HandshakeFailed(Exception):
    pass


class DeadConnection(Exception):
    pass


@dataclass(frozen=True)
class StreamTiming:
    ping_interval_s: float = 20.0
    dead_after_s: float = 30.0
    handshake_timeout_s: float = 10.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    auth_backoff_min_s: float = 5.0


@dataclass
class ConnectionState:
    up: bool = False
    last_rx_monotonic: float = 0.0
    last_rx_wall: float = 0.0
    up_since: datetime | None = None
    last_error: str | None = None
    connects: int = 0


def backoff_delay(attempt: int, low_s: float, high_s: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter over the upper half, so many clients do not reconnect in step."""
    ceiling = min(high_s, low_s * (2 ** min(attempt, 30)))
    return ceiling * rng.uniform(0.5, 1.0)


@dataclass
class Stream:
    """One long-lived connection; `run` keeps it up (reconnecting) until `stop` is set."""

    source: Source
    url: str
    topics: tuple[str, ...]
    dispatcher: Dispatcher
    counters: Counters
    timing: StreamTiming
    api_key: str | None = None
    api_secret: SecretStr | None = None
    on_up: Callable[[datetime | None], None] = lambda gap_start: None
    state: ConnectionState = field(default_factory=ConnectionState)
    _rng: random.Random = field(default_factory=random.Random)
    _req_ids: itertools.count = field(default_factory=itertools.count)

    def healthy(self, now_monotonic: float | None = None) -> bool:
        now = time.monotonic() if now_monotonic is None else now_monotonic
        return self.state.up and now - self.state.last_rx_monotonic < self.timing.dead_after_s

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        auth_failures = 0
        gap_start: datetime | None = None  # when this stream last heard the venue before a drop
        while not stop.is_set():
            delay_low, delay_high = self.timing.backoff_min_s, self.timing.backoff_max_s
            lost: BaseException | None = None
            try:
                # Bybit's own app-level ping is used (not protocol pings); no per-message deflate: the
                # frames are small and inflating them costs more CPU than the bandwidth is worth.
                async with connect(self.url, ping_interval=None, open_timeout=self.timing.handshake_timeout_s,
                                   close_timeout=1.0, max_size=2**24, max_queue=64, compression=None) as ws:
                    await self._handshake(ws)
                    attempt = 0
                    auth_failures = 0
                    self._mark_up(gap_start)
                    gap_start = None
                    await self._pump(ws, stop)
            except AuthRejected as exc:
                self.counters.auth_failures += 1
                auth_failures += 1
                self.state.last_error = f"auth rejected: {exc}"
                if auth_failures == 1 or auth_failures % 20 == 0:
                    log.error("auth_rejected", connection=self.source.name, reason=str(exc), failures=auth_failures)
                delay_low = self.timing.auth_backoff_min_s
                delay_high = max(self.timing.backoff_max_s, delay_low)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException, HandshakeFailed,
                    DeadConnection) as exc:
                self.state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                lost = exc
            finally:
                if self.state.up:
                    self.state.up = False
                    self.state.up_since = None
                    gap_start = datetime.fromtimestamp(self.state.last_rx_wall, UTC)
            if stop.is_set():
                break
            if isinstance(lost, TimeoutError):
                # The venue took the connection but did not answer (the TCP/WebSocket opening or the auth
                # or subscribe reply): this attempt already waited handshake_timeout_s, which paces the
                # attempts by itself (10 s: at most 6 a minute per connection, Bybit allows 500 new
                # connections per 5 min per IP). Escalating on top of it only made the listener sleep up to
                # backoff_max_s after the venue answered again (a 60 s silence: +30..97 s to be back).
                attempt = 0
            self.counters.reconnects += 1
            delay = backoff_delay(attempt, delay_low, delay_high, self._rng)
            attempt += 1
            if lost is not None:
                log.warning("connection_lost", connection=self.source.name, error=self.state.last_error,
                            retry_in_s=round(delay, 3))
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _mark_up(self, gap_start: datetime | None) -> None:
        self.state.up = True
        self.state.connects += 1
        self.state.up_since = datetime.now(UTC)
        self.state.last_rx_monotonic = time.monotonic()
        self.state.last_rx_wall = time.time()
        self.state.last_error = None
        log.info("connection_up", connection=self.source.name, url=self.url,
                 gap_since=gap_start.isoformat() if gap_start else None)
        self.on_up(gap_start)

    def _req_id(self, what: str) -> str:
        return f"{what}-{next(self._req_ids)}"

    async def _expect(self, ws: ClientConnection, kind: type, req_id: str | None) -> AuthResult | SubscribeResult:
        """Read until the answer to our request; data frames that arrive meanwhile are dispatched."""
        async with asyncio.timeout(self.timing.handshake_timeout_s):
            while True:
                raw = await ws.recv()
                for control in await self.dispatcher.handle(self.source, raw):
                    if isinstance(control, kind) and getattr(control, "req_id", None) in (None, req_id):
                        return control  # type: ignore[return-value]

    async def _handshake(self, ws: ClientConnection) -> None:
        if self.source.private:
            if not self.api_key or self.api_secret is None:
                raise AuthRejected("no API key configured")
            expires = int(time.time() * 1000) + AUTH_EXPIRES_MS
            signature = sign_ws_auth(self.api_secret.get_secret_value(), expires)
            await ws.send(json.dumps({"req_id": self._req_id("auth"), "op": "auth",
                                      "args": [self.api_key, expires, signature]}))
            answer = await self._expect(ws, AuthResult, None)
            if not answer.success:
                raise AuthRejected(answer.ret_msg or "auth failed")
        for i in range(0, len(self.topics), MAX_ARGS_PER_SUBSCRIBE):
            req_id = self._req_id("sub")
            await ws.send(json.dumps({"req_id": req_id, "op": "subscribe",
                                      "args": list(self.topics[i:i + MAX_ARGS_PER_SUBSCRIBE])}))
            ack = await self._expect(ws, SubscribeResult, req_id)
            if not ack.success:
                raise HandshakeFailed(f"subscribe rejected: {ack.ret_msg}")

    async def _pump(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        reader = asyncio.create_task(self._read(ws))
        pinger = asyncio.create_task(self._ping(ws))
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({reader, pinger, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper:
                    task.result()  # re-raise why the connection ended
            if reader in done:
                raise HandshakeFailed("server closed the connection")
        finally:
            for task in (reader, pinger, stopper):
                task.cancel()
            await asyncio.gather(reader, pinger, stopper, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.state.last_rx_monotonic = time.monotonic()
            self.state.last_rx_wall = time.time()
            for control in await self.dispatcher.handle(self.source, raw):
                if isinstance(control, AuthResult | SubscribeResult) and not control.success:
                    log.warning("control_rejected", connection=self.source.name, ret_msg=control.ret_msg)

    async def _ping(self, ws: ClientConnection) -> None:
        """App-level ping every interval; no frame at all (not even a pong) for `dead_after_s` means dead.

        Wakes at the next ping or at the moment the connection would be dead, whichever is first, so a
        silent connection is given up when its time is up, not up to a polling interval later.
        """
        next_ping = time.monotonic()
        while True:
            now = time.monotonic()
            if now - self.state.last_rx_monotonic >= self.timing.dead_after_s:
                raise DeadConnection(f"no frame for {now - self.state.last_rx_monotonic:.1f}s")
            if now >= next_ping:
                await ws.send(json.dumps({"req_id": self._req_id("ping"), "op": "ping"}))
                next_ping = now + self.timing.ping_interval_s
            dead_at = self.state.last_rx_monotonic + self.timing.dead_after_s
            await asyncio.sleep(max(0.0, min(next_ping, dead_at) - time.monotonic()))


def public_topics(symbols: tuple[str, ...], kline_intervals: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for s in symbols for t in (*(f"kline.{i}.{s}" for i in kline_intervals), f"tickers.{s}"))
