"""Handles for tests and benchmarks: run the venue as a subprocess, and drive its admin API."""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from services.bybit_sim.admin import TOKEN_HEADER
from services.bybit_sim.admin_token import TOKEN_ENV, TOKEN_FILE_ENV, read_token_file

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_MARKER = "bybit_sim ready on"
_GENERATE = "generate"
_TOKENS: dict[str, str] = {}  # admin URL -> token of the venues this process started, for VenueAdmin


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _accounts_arg(accounts: Sequence[tuple[str, str] | tuple[str, str, Decimal | str | int]]) -> str:
    return ",".join(":".join(str(part) for part in acct) for acct in accounts)


class VenueProcess:
    """The venue in its own process on a free loopback port; `restart()` keeps its state (SIGTERM snapshots it)."""

    def __init__(self, accounts: Sequence[tuple[str, str] | tuple[str, str, Decimal | str | int]], *,
                 speed: float | None = 1000.0, seed: int = 1, state_file: Path | None = None, partial_fills: bool = False,
                 extra_args: Sequence[str] = (), host: str = "127.0.0.1", port: int | None = None,
                 admin_token: str | None = _GENERATE) -> None:
        """`admin_token`: by default a new random one, handed to the venue in its environment (never on its
        command line); None leaves it to the venue's own options (e.g. `--admin-token-file` in extra_args)."""
        self.accounts = list(accounts)
        self.admin_token = secrets.token_urlsafe(32) if admin_token == _GENERATE else admin_token
        self.speed = speed
        self.seed = seed
        self._tmp = tempfile.TemporaryDirectory(prefix="bybit_sim_")
        self.state_file = Path(state_file) if state_file is not None else Path(self._tmp.name) / "state.json"
        self.partial_fills = partial_fills
        self.extra_args = list(extra_args)
        self.host = host
        self._port_chosen = port is None
        self.port = port or free_port(host)
        self._started_once = False
        self.log_path = Path(self._tmp.name) / "venue.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return self.base_url

    @property
    def admin_url(self) -> str:
        return self.base_url

    @property
    def ws_public_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/public/linear"

    @property
    def ws_private_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/private"

    def command(self) -> list[str]:
        speed = ["--speed", str(self.speed)] if self.speed is not None else []  # None: `--wall-replay` in extra_args
        cmd = [sys.executable, "-m", "services.bybit_sim", "serve", "--host", self.host, "--port", str(self.port),
               *speed, "--seed", str(self.seed), "--state-file", str(self.state_file)]
        if self.accounts:
            cmd += ["--accounts", _accounts_arg(self.accounts)]
        if self.partial_fills:
            cmd.append("--partial-fills")
        return cmd + self.extra_args

    def start(self, timeout_s: float = 30.0) -> VenueProcess:
        """Start and wait for readiness; a first start on an auto-picked port retries on another if taken."""
        attempts = 3 if self._port_chosen and not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._start_once(timeout_s)
                self._started_once = True
                return self
            except RuntimeError:
                if attempt == attempts - 1 or "address already in use" not in self._log_tail().lower():
                    raise
                self.port = free_port(self.host)
        return self

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def _start_once(self, timeout_s: float) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.log_path, "ab")
        offset = self.log_path.stat().st_size
        env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, TOKEN_FILE_ENV)}
        env["PYTHONUNBUFFERED"] = "1"
        if self.admin_token is not None:
            env[TOKEN_ENV] = self.admin_token
            _TOKENS[self.admin_url] = self.admin_token
        self.proc = subprocess.Popen(self.command(), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                if READY_MARKER.encode() in fh.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"bybit_sim did not become ready on port {self.port}: {self._log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Graceful stop: the venue writes its state file before exiting."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """Crash: no snapshot; a later `start()` resumes from the last snapshot written."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout_s: float = 30.0) -> VenueProcess:
        self.stop()
        return self.start(timeout_s)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Stop for good. A state file of the handle's own goes with it, so nothing is left to snapshot: the
        venue is killed (writing a large state, e.g. after 130,000 executions, takes longer than the stop allows)."""
        if self.state_file.parent == Path(self._tmp.name):
            self.kill()
        else:
            self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> VenueProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class VenueAdminError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin call failed: HTTP {status}: {body}")
        self.status = status
        self.body = body


def find_admin_token(base_url: str, token: str | None = None, token_file: Path | None = None) -> str:
    """The token given, else the one in `token_file`, else that of a VenueProcess this process started on
    `base_url`, else `BYBIT_SIM_ADMIN_TOKEN`, else the file named by `BYBIT_SIM_ADMIN_TOKEN_FILE`."""
    found = token or (read_token_file(token_file) if token_file is not None else None) \
        or _TOKENS.get(base_url) or os.environ.get(TOKEN_ENV, "").strip() or None
    if found is None and os.environ.get(TOKEN_FILE_ENV):
        found = read_token_file(Path(os.environ[TOKEN_FILE_ENV]))
    if not found:
        raise ValueError(f"no admin token for {base_url}: pass token= or token_file=, or set {TOKEN_ENV} or "
                         f"{TOKEN_FILE_ENV} (make run keeps it in .run/venue/admin-token)")
    return found


class VenueAdmin:
    """Async client for every `/admin/...` route of a running venue (sends its token and JSON bodies)."""

    def __init__(self, base_url: str, token: str | None = None, *, token_file: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = find_admin_token(self.base_url, token, token_file)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VenueAdmin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        if body is None and method in ("POST", "DELETE"):
            body = {}  # the venue refuses a POST or DELETE that is not JSON
        async with self._session.request(method, f"{self.base_url}{path}", json=body,
                                         headers={TOKEN_HEADER: self._token}) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200 or not data.get("ok"):
                raise VenueAdminError(resp.status, data)
            return data

    # faults
    async def fault(self, kind: str, *, seconds: float | None = None, api_key: str | None = None,
                    delay_ms: int | None = None, status: int | None = None,
                    channel: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind}
        for name, value in (("seconds", seconds), ("api_key", api_key), ("delay_ms", delay_ms), ("status", status),
                            ("channel", channel)):
            if value is not None:
                body[name] = value
        return await self._call("POST", "/admin/faults", body)

    async def reset_connections(self, api_key: str | None = None, channel: str = "all") -> int:
        return (await self.fault("reset", api_key=api_key, channel=channel))["affected"]

    async def close_connections(self, api_key: str | None = None, channel: str = "all") -> int:
        return (await self.fault("close", api_key=api_key, channel=channel))["affected"]

    async def silence(self, seconds: float, api_key: str | None = None) -> None:
        await self.fault("silence", seconds=seconds, api_key=api_key)

    async def duplicate_pushes(self, seconds: float, api_key: str | None = None) -> None:
        await self.fault("duplicate", seconds=seconds, api_key=api_key)

    async def reorder_pushes(self, seconds: float, api_key: str | None = None) -> None:
        await self.fault("reorder", seconds=seconds, api_key=api_key)

    async def delay_pushes(self, seconds: float, delay_ms: int, api_key: str | None = None) -> None:
        await self.fault("delay", seconds=seconds, delay_ms=delay_ms, api_key=api_key)

    async def reject_auth(self, seconds: float, api_key: str | None = None) -> None:
        await self.fault("reject_auth", seconds=seconds, api_key=api_key)

    async def rate_limit(self, seconds: float, api_key: str | None = None) -> None:
        await self.fault("rate_limit", seconds=seconds, api_key=api_key)

    async def http_5xx(self, seconds: float, status: int = 503, api_key: str | None = None) -> None:
        await self.fault("http_5xx", seconds=seconds, status=status, api_key=api_key)

    async def faults(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/admin/faults"))["faults"]

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/admin/faults")

    # executions
    async def generate(self, api_key: str, count: int, rate_per_s: float, symbols: Sequence[str] = ("BTCUSDT",),
                       prefix: str = "sim", rows_per_frame: int = 100) -> str:
        body = {"api_key": api_key, "count": count, "rate_per_s": rate_per_s, "symbols": list(symbols),
                "prefix": prefix, "rows_per_frame": rows_per_frame}
        return (await self._call("POST", "/admin/generate", body))["id"]

    async def generation(self, gen_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/admin/generate/{gen_id}")

    async def wait_generation(self, gen_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            status = await self.generation(gen_id)
            if status["state"] != "running":
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"generation {gen_id} still running: {status}")
            await asyncio.sleep(0.05)

    async def executions(self, api_key: str, *, venue_time: bool = False) -> list[dict[str, Any]]:
        """Every execution the venue holds for the account (ground truth), oldest first; `venue_time`
        adds `venueTimeMs`, the venue clock when each happened (for matching candles)."""
        query = "?venue_time=1" if venue_time else ""
        return (await self._call("GET", f"/admin/accounts/{api_key}/executions{query}"))["list"]

    async def accounts(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/admin/accounts"))["list"]

    async def add_account(self, api_key: str, secret: str, balance: Decimal | str = "100000") -> None:
        await self._call("POST", "/admin/accounts", {"api_key": api_key, "secret": secret, "balance": str(balance)})

    async def snapshot(self) -> str:
        return (await self._call("POST", "/admin/snapshot"))["path"]

    async def pin_price(self, symbol: str, price: Decimal | str | None) -> None:
        await self._call("POST", "/admin/price", {"symbol": symbol, "price": None if price is None else str(price)})

    async def settle_funding(self, symbol: str | None = None) -> int:
        return (await self._call("POST", "/admin/funding", {"symbol": symbol} if symbol else {}))["executions"]

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/admin/health")

    async def clock(self) -> dict[str, Any]:
        """Venue time and, with `--stepped`, whether it is held at a candle close."""
        return await self._call("GET", "/admin/clock")

    async def step(self) -> None:
        """End the stepped clock's current hold now."""
        await self._call("POST", "/admin/clock/step", {})
