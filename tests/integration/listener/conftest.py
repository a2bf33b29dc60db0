"""The listener as a real process against the simulated venue and the test stack."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from services.websocket_listener import health
from services.websocket_listener.config import ListenerSettings
from shared.redis_client import redis_for
from tests.support.stack import TestStack

REPO = Path(__file__).resolve().parents[3]
KEYS = {
    "shortseller_001": ("SHORTSELLER", "ss-test-key", "ss-test-secret-0123456789"),
    "lxalgo_001": ("LXALGO", "lx-test-key", "lx-test-secret-0123456789"),
    "momentum_001": ("MOMENTUM", "mo-test-key", "mo-test-secret-0123456789"),
}
FAST_TIMING = {
    "LISTENER_PING_INTERVAL_S": "1", "LISTENER_DEAD_AFTER_S": "3", "LISTENER_HANDSHAKE_TIMEOUT_S": "3",
    "LISTENER_BACKOFF_MIN_S": "0.2", "LISTENER_BACKOFF_MAX_S": "2", "LISTENER_AUTH_BACKOFF_MIN_S": "0.5",
    "LISTENER_HEARTBEAT_EVERY_S": "0.5", "LISTENER_HEALTH_MAX_AGE_S": "5", "LISTENER_CATCHUP_EVERY_S": "60",
}

# The connection timing the listener ships with (the defaults in config.py: ping every 20 s, dead after 30 s,
# 10 s handshake, 0.5..30 s backoff, scheduled catch-up every 300 s), for tests that must not scale it down.
PRODUCTION_TIMING = {
    str(f.validation_alias): str(f.default) for name, f in ListenerSettings.model_fields.items()
    if name in ("ping_interval_s", "dead_after_s", "handshake_timeout_s", "backoff_min_s", "backoff_max_s",
                "auth_backoff_min_s", "catchup_every_s")
}


def api_key(bot_id: str) -> str:
    return KEYS[bot_id][1]


def listener_env(stack: TestStack, venue: VenueProcess, bots: list[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTENER_", "BYBIT_"))
           and not k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET"))}
    env.update(stack.env)
    env.update({"BYBIT_VENUE": "sim", "BYBIT_REST_URL": venue.rest_url, "BYBIT_WS_PUBLIC_URL": venue.ws_public_url,
                "BYBIT_WS_PRIVATE_URL": venue.ws_private_url, "LISTENER_BOTS": ",".join(bots),
                "LISTENER_SYMBOLS": "BTCUSDT,ETHUSDT,SOLUSDT", "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    for bot_id in bots:
        prefix, key, secret = KEYS[bot_id]
        env[f"{prefix}_BYBIT_API_KEY"] = key
        env[f"{prefix}_BYBIT_API_SECRET"] = secret
    env.update(FAST_TIMING)
    env.update(extra)
    return env


class ListenerProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._tmp = tempfile.TemporaryDirectory(prefix="listener_")
        self.log_path = Path(self._tmp.name) / "listener.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ListenerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.websocket_listener.main"], cwd=REPO,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def health(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.websocket_listener.main", "health"], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=30)

    async def wait_healthy(self, stack: TestStack, bots: list[str], timeout_s: float = 30.0) -> None:
        r = redis_for(stack.redis, 0)
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                problems = await health.check(r, health.connection_names(bots), 5.0, datetime.now(UTC))
                if not problems:
                    return
                if self.proc is None or self.proc.poll() is not None or asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"listener not healthy: {problems}\n{self.log_tail()}")
                await asyncio.sleep(0.1)
        finally:
            await r.aclose()

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
        self._tmp.cleanup()


@pytest.fixture(scope="module")
def venue() -> Iterator[VenueProcess]:
    accounts = [(key, secret, "10000000") for _, key, secret in KEYS.values()]
    with VenueProcess(accounts, speed=1.0) as v:
        yield v


@pytest.fixture
async def admin(venue: VenueProcess) -> AsyncIterator[VenueAdmin]:
    async with VenueAdmin(venue.admin_url) as a:
        yield a
        await a.clear_faults()


@pytest.fixture
def make_listener(clean_state: TestStack, venue: VenueProcess) -> Iterator[object]:
    started: list[ListenerProcess] = []

    def make(bots: list[str], **extra: str) -> ListenerProcess:
        proc = ListenerProcess(listener_env(clean_state, venue, bots, **extra))
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.close()
