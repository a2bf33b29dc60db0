"""Processes around trade_sync for its tests and benchmark: a seeded venue, the listener, the CLI itself.

Everything runs as a real process on loopback: the simulated venue (`services.bybit_sim`), the
websocket listener (`services/websocket_listener/main.py`) and trade_sync through its `main.py`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from services.bybit_sim.handle import VenueProcess

REPO = Path(__file__).resolve().parents[2]
TRADE_SYNC_MAIN = REPO / "services" / "trade_sync" / "main.py"

# (bot_id, env prefix, api key, secret)
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("shortseller_001", "SHORTSELLER", "tsShortKey0001", "tsShortSecret0001abcdef"),
    ("lxalgo_001", "LXALGO", "tsLxalgoKey0001", "tsLxalgoSecret0001abcdef"),
    ("momentum_001", "MOMENTUM", "tsMomentumKey01", "tsMomentumSecret01abcdef"),
)


def api_key_of(bot_id: str) -> str:
    return next(a[2] for a in ACCOUNTS if a[0] == bot_id)


def seed_state(state_file: Path, months: int, executions: int, bots: Sequence[str] | None = None,
               seed: int = 7) -> None:
    """Write each account's past trading into one venue state file (runs the venue's own seeder)."""
    for i, (bot_id, _prefix, key, secret) in enumerate(ACCOUNTS):
        if bots is not None and bot_id not in bots:
            continue
        subprocess.run([sys.executable, "-m", "services.bybit_sim", "seed-history", "--state-file", str(state_file),
                        "--account", f"{key}:{secret}", "--months", str(months), "--executions", str(executions),
                        "--seed", str(seed + i), "--link-prefix", bot_id.split("_")[0][:8]],
                       cwd=REPO, check=True, capture_output=True)


def start_venue(state_file: Path, *, query_limit: int = 50, ip_limit: int = 600) -> VenueProcess:
    """The venue at wall-clock speed (no funding marks or liquidations pass during a test)."""
    return VenueProcess([(k, s) for _b, _p, k, s in ACCOUNTS], speed=1.0, state_file=state_file,
                        extra_args=["--query-rate-limit", str(query_limit), "--ip-rate-limit", str(ip_limit)]).start()


def keys_env(bots: Sequence[str] | None = None) -> dict[str, str]:
    env: dict[str, str] = {}
    for bot_id, prefix, key, secret in ACCOUNTS:
        if bots is None or bot_id in bots:
            env[f"{prefix}_BYBIT_API_KEY"] = key
            env[f"{prefix}_BYBIT_API_SECRET"] = secret
    return env


def base_env(stack_env: dict[str, str], venue: VenueProcess | None, bots: Sequence[str] | None = None,
             **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell that names keys or venues."""
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET")) or k.startswith(("BYBIT_", "TRADE_SYNC_",
                                                                                          "LISTENER_")))}
    env.update(stack_env)
    env.update(keys_env(bots))
    env["BYBIT_VENUE"] = "sim"
    if venue is not None:
        env["BYBIT_REST_URL"] = venue.rest_url
        env["BYBIT_WS_PUBLIC_URL"] = venue.ws_public_url
        env["BYBIT_WS_PRIVATE_URL"] = venue.ws_private_url
    env["LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Listener:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def start_listener(env: dict[str, str], log_path: Path, redis_port: int, redis_password: str,
                   timeout_s: float = 60.0) -> Listener:
    """The real listener; ready once its stream consumer group exists and every bot's start-up catch-up is done."""
    env = {**env, "LISTENER_CATCHUP_EVERY_S": "3600", "LISTENER_CATCHUP_LOOKBACK_DAYS": "1",
           "LISTENER_HEARTBEAT_EVERY_S": "0.5"}
    n_bots = sum(1 for _b, p, _k, _s in ACCOUNTS if f"{p}_BYBIT_API_KEY" in env)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.websocket_listener.main"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    listener = Listener(proc, log_path)
    r = redis.Redis(port=redis_port, password=redis_password, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"listener exited with {proc.returncode}: {listener.tail()}")
            try:
                groups = r.xinfo_groups("ingest:executions")
            except redis.ResponseError:
                groups = []
            catchups = int(r.hget("listener:counters", "catchups") or 0)
            if any(g["name"] == "listener" for g in groups) and catchups >= n_bots:
                return listener
            time.sleep(0.1)
    finally:
        r.close()
    listener.stop()
    raise RuntimeError(f"listener not ready in {timeout_s} s: {listener.tail()}")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: Sequence[str], env: dict[str, str], timeout_s: float = 300.0,
            cwd: Path | None = None) -> CliResult:
    res = subprocess.run([sys.executable, str(TRADE_SYNC_MAIN), *args], cwd=cwd or REPO, env=env,
                         capture_output=True, text=True, timeout=timeout_s)
    return CliResult(res.returncode, res.stdout, res.stderr)


def spawn_cli(args: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, str(TRADE_SYNC_MAIN), *args], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


@dataclass
class Serve:
    """`trade_sync serve` as the container runs it: the scheduled sync and the flatten requests."""
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(ln) for ln in self.log_path.read_text(errors="replace").splitlines()
                if ln.startswith("{")]


def start_serve(env: dict[str, str], log_path: Path, redis_port: int, redis_password: str,
                timeout_s: float = 60.0) -> Serve:
    """Start `main.py serve`; ready once its scheduler has beaten. No listener is needed for the
    flatten requests, so the first scheduled sync gives up quickly on what it cannot ingest."""
    env = {"TRADE_SYNC_INTERVAL_S": "3600", "TRADE_SYNC_INGEST_TIMEOUT_S": "5", **env}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "main.py", "serve"], cwd=REPO / "services" / "trade_sync",
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    serve = Serve(proc, log_path)
    r = redis.Redis(port=redis_port, password=redis_password, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"trade_sync serve exited with {proc.returncode}: {serve.tail()}")
            if r.exists("heartbeat:trade_sync:scheduler"):
                return serve
            time.sleep(0.1)
    finally:
        r.close()
    serve.stop()
    raise RuntimeError(f"trade_sync serve not ready in {timeout_s} s: {serve.tail()}")
