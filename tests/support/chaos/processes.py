"""The chaos run's processes: the listener and trade_sync restarted like containers, and the proxy that
loses a PostgreSQL answer in front of PgBouncer for the listener."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.pg_answer_dropper import AnswerDropper

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Supervised:
    """A service process restarted whenever it ends (restart policy `always`, as in compose): by a SIGKILL of
    the run, or on its own (an unexpected exit is counted: the listener exits non-zero when a task dies)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    restart_delay_s: float = 1.0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed: int = 0
    unexpected_exits: list[int] = field(default_factory=list)  # exit codes of exits the run did not cause
    _expecting_exit: bool = False
    _stopping: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        if self._watch is None:
            self._watch = asyncio.create_task(self._watchdog(), name=f"watch-{self.name}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def _watchdog(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.2)
            async with self._lock:
                if self._stopping or self.proc is None or self.proc.poll() is None:
                    continue
                if not self._expecting_exit:
                    self.unexpected_exits.append(self.proc.returncode)
                    with open(self.log_path, "ab") as log:
                        log.write(f"\n### chaos: {self.name} exited on its own with {self.proc.returncode}\n".encode())
                self._expecting_exit = False
                await asyncio.sleep(self.restart_delay_s)
                if not self._stopping:
                    self.start()

    async def kill9(self) -> bool:
        """SIGKILL now (the watchdog restarts it); False when it was not running at that instant."""
        async with self._lock:
            if not self.running:
                return False
            assert self.proc is not None
            self._expecting_exit = True
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait)
            self.killed += 1
        return True

    async def stop(self, timeout_s: float = 40.0) -> int | None:
        """SIGTERM and wait (SIGKILL after the timeout); returns the exit code."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        return self.proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def listener_argv() -> list[str]:
    return [sys.executable, "-m", "services.websocket_listener.main"]


def trade_sync_argv() -> list[str]:
    return [sys.executable, str(REPO / "services" / "trade_sync" / "main.py"), "serve"]


class ChaosProxy(AnswerDropper):
    """AnswerDropper that also lives through PgBouncer restarts: a client whose upstream cannot be reached
    is closed at once (the client reconnects), and every upstream connection is counted."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__(upstream_host, upstream_port)
        self.armed_count = 0
        self.refused = 0

    def arm(self, marker: bytes) -> None:
        self.armed_count += 1
        super().arm(marker)

    @property
    def armed(self) -> bool:
        return self._armed is not None

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            await super()._serve(c_reader, c_writer)
        except (OSError, TimeoutError):
            self.refused += 1
            c_writer.transport.abort()


def wait_until(cond: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")
