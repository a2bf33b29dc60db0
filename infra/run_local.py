"""`make run`: the whole platform on this machine, without Docker.

Brings up the private stack (PostgreSQL, PgBouncer, Redis), starts the simulated venue with one
account per bot, then the platform's services as child processes with the same commands their
containers run (ShortSeller: `python -m strategies.shortseller`, with its own key pair only, its
SHORTSELLER_* settings from the environment or .env). A service that dies is restarted with backoff;
Ctrl-C (or SIGTERM) stops them all.
The Telegram bot starts only when `C2_TELEGRAM_BOT_TOKEN` is configured (in the environment or .env).
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.localstack import REPO, LocalStack, StackConfig, StackError
from infra.rotating_log import BACKUPS, MAX_BYTES, RotatingLog, pump
from services.bybit_sim.state import read_state, wall_replay_conflict
from shared.bots import BOTS
from shared.private_file import write_private

RUN = REPO / ".run"
ADMIN_TOKEN_FILE = RUN / "venue" / "admin-token"  # the venue's admin API token (0600), for VenueAdmin and curl
VENUE_STATE = RUN / "venue" / "state.json"
PY = sys.executable
# Each service's log rotates at 20 MB, four old files kept (compose: json-file max-size 20m, max-file 5)
LOG_MAX_BYTES = MAX_BYTES
LOG_BACKUPS = BACKUPS


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    log_path: Path = field(default_factory=Path)
    extra_env: dict[str, str] = field(default_factory=dict)  # this child's own secrets
    key_prefix: str | None = None  # a bot: of the bots' key pairs only its own ({PREFIX}_BYBIT_API_*)
    log: RotatingLog | None = None  # one per child, kept across its restarts
    log_thread: threading.Thread | None = None


def local_keys(path: Path = RUN / "local-keys.env") -> dict[str, str]:
    """One simulated-venue key pair per bot, generated once and kept in .run (mode 600)."""
    if path.exists():
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    keys = {}
    for spec in BOTS.values():
        keys[f"{spec.env_prefix}_BYBIT_API_KEY"] = f"sim{spec.env_prefix.lower()}{secrets.token_hex(6)}"
        keys[f"{spec.env_prefix}_BYBIT_API_SECRET"] = secrets.token_hex(24)
    path.parent.mkdir(exist_ok=True)
    write_private(path, "".join(f"{k}={v}\n" for k, v in keys.items()))
    return keys


def write_venue_env(path: Path, venue_port: int) -> None:
    """Where the local venue listens, for the operators' commands (`make sync`, infra/opctl.py)."""
    path.write_text(f"BYBIT_VENUE=sim\nBYBIT_SIM_HOST=127.0.0.1\nBYBIT_SIM_PORT={venue_port}\n")


def venue_accounts(keys: dict[str, str]) -> str:
    """The venue's accounts, passed in its environment (BYBIT_SIM_ACCOUNTS), never on its command line."""
    return ",".join(f"{keys[f'{s.env_prefix}_BYBIT_API_KEY']}:{keys[f'{s.env_prefix}_BYBIT_API_SECRET']}"
                    for s in BOTS.values())


def children(venue_port: int, keys: dict[str, str]) -> list[Child]:
    out = [
        Child("bybit_sim", [PY, "-m", "services.bybit_sim", "serve", "--host", "127.0.0.1",
                            "--port", str(venue_port), "--wall-replay",
                            "--state-file", str(VENUE_STATE),
                            "--admin-token-file", str(ADMIN_TOKEN_FILE)],
              extra_env={"BYBIT_SIM_ACCOUNTS": venue_accounts(keys)}),
        Child("websocket_listener", [PY, "-m", "services.websocket_listener"]),
        Child("trade_sync", [PY, "-m", "services.trade_sync", "serve"]),
        Child("shortseller", [PY, "-m", "strategies.shortseller"], key_prefix=BOTS["shortseller_001"].env_prefix),
    ]
    if os.environ.get("C2_TELEGRAM_BOT_TOKEN") or _dotenv_has("C2_TELEGRAM_BOT_TOKEN"):
        out.append(Child("telegram_c2", [PY, "-m", "services.telegram_c2.main"]))
    return out


def retire_old_venue_state(path: Path = VENUE_STATE) -> Path | None:
    """A state file from before `--wall-replay` (venue time in the replayed past, at `--speed 60`) is
    refused by the venue; it is moved aside (`state.json.before-wall-replay`) so a new venue starts.
    Returns where it went, or None when there was nothing to move."""
    if not path.exists() or wall_replay_conflict(read_state(path), True) is None:
        return None
    aside = path.with_name(path.name + ".before-wall-replay")
    path.replace(aside)
    return aside


def _dotenv_has(var: str) -> bool:
    dotenv = REPO / ".env"
    return dotenv.exists() and any(line.startswith(f"{var}=") and line.strip() != f"{var}="
                                   for line in dotenv.read_text().splitlines())


def child_env(child: Child, env: dict[str, str]) -> dict[str, str]:
    """The child's environment: the common one (the bots' key pairs dropped but its own for a bot) and
    its own secrets."""
    if child.key_prefix is not None:
        own = (f"{child.key_prefix}_BYBIT_API_KEY", f"{child.key_prefix}_BYBIT_API_SECRET")
        env = {k: v for k, v in env.items() if k in own or not k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET"))}
    return {**env, **child.extra_env}


def start(child: Child, env: dict[str, str], log_dir: Path = RUN / "logs", max_bytes: int = LOG_MAX_BYTES,
          backups: int = LOG_BACKUPS) -> None:
    """Start the child with its output going through a size-rotated log (`{name}.log`, `.1` ... `.N`)."""
    child.log_path = log_dir / f"{child.name}.log"
    if child.log is None:
        child.log = RotatingLog(child.log_path, max_bytes, backups)
    child.proc = subprocess.Popen(child.argv, cwd=REPO, env=child_env(child, env), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
    assert child.proc.stdout is not None
    if child.log_thread is not None:
        child.log_thread.join(timeout=5)  # the previous run's last lines first
    child.log_thread = pump(child.proc.stdout, child.log)
    shown = child.log_path.relative_to(REPO) if child.log_path.is_relative_to(REPO) else child.log_path
    print(f"run: {child.name} started (pid {child.proc.pid}, log {shown})")


def main() -> int:
    stack = LocalStack(StackConfig.for_base(RUN / "stack", int(os.environ.get("ALPHA_STACK_PORT_BASE", "15432"))))
    try:
        stack.up()
    except StackError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    stack.write_env_file(RUN / "stack.env")
    keys = local_keys()
    venue_port = int(os.environ.get("BYBIT_SIM_PORT", "18080"))
    write_venue_env(RUN / "venue.env", venue_port)
    env = {k: v for k, v in os.environ.items() if k != "BYBIT_SIM_ADMIN_TOKEN"}  # the token lives in its file
    env = {**env, **stack.env(), **keys, "BYBIT_VENUE": "sim", "BYBIT_SIM_PORT": str(venue_port),
           "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"), "PYTHONUNBUFFERED": "1"}
    (RUN / "venue").mkdir(parents=True, exist_ok=True)
    aside = retire_old_venue_state()
    if aside is not None:
        print(f"run: the venue's state file was from a --speed run (replayed time); moved to {aside.name}, "
              "the venue starts anew on wall time")
    kids = children(venue_port, keys)
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in kids:
        start(child, env)
        if child.name == "bybit_sim":
            time.sleep(1.0)
    print(f"run: platform up; venue at http://127.0.0.1:{venue_port} (admin token in "
          f"{ADMIN_TOKEN_FILE.relative_to(REPO)}); psql: `make psql`; logs in .run/logs; Ctrl-C stops")
    while not stopping:
        now = time.monotonic()
        for child in kids:
            code = child.proc.poll() if child.proc else None
            if child.proc is not None and code is not None:
                child.restarts += 1
                delay = min(2 ** child.restarts, 60)
                print(f"run: {child.name} exited with {code}; restarting in {delay}s (see {child.log_path})")
                child.proc, child.next_start = None, now + delay
            if child.proc is None and now >= child.next_start:
                start(child, env)
        time.sleep(0.5)
    for child in kids:
        if child.proc and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    for child in kids:
        if child.proc:
            try:
                child.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.proc.kill()
    for child in kids:
        if child.log_thread is not None:
            child.log_thread.join(timeout=5)
        if child.log is not None:
            child.log.close()
    print("run: stopped (the stack keeps running; `make stack-down` stops it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
