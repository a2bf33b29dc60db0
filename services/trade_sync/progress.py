"""Progress of a backfill: a one-line bar on a terminal, plain log lines otherwise."""
from __future__ import annotations

import asyncio
import time
from typing import TextIO

import structlog

log = structlog.get_logger()


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds + 0.5)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def render_bar(done: int, total: int, executions: int, elapsed_s: float, width: int = 24, fetched: int | None = None) -> str:
    """`[#####-----] 12/39 windows  8,400 execs  1,320/s  ETA 00:05` (pure); executions are committed ones."""
    frac = done / total if total else 1.0
    filled = int(frac * width)
    rate = executions / elapsed_s if elapsed_s > 0 else 0.0
    eta = (elapsed_s / done) * (total - done) if done else None
    read = f" ({fetched:,} read)" if fetched is not None and fetched != executions else ""
    return (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} windows  {executions:,} execs{read}  "
            f"{rate:,.0f}/s  ETA {format_eta(eta if total else 0.0)}")


class Progress:
    def __init__(self, stream: TextIO, total_windows: int, *, tty: bool | None = None, every_s: float = 0.2) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.total = total_windows
        self.done = 0
        self.executions = 0  # committed (in windows the listener has confirmed)
        self.fetched = 0
        self.started = time.monotonic()
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def add_executions(self, n: int) -> None:
        self.fetched += n

    def window_done(self, bot_id: str, start: str, end: str, fetched: int, inserted: int, present: int) -> None:
        self.done += 1
        self.executions += fetched
        if not self.tty:
            log.info("window_done", bot_id=bot_id, window_start=start, window_end=end, fetched=fetched,
                     inserted=inserted, already_present=present, windows=f"{self.done}/{self.total}")

    def line(self) -> str:
        return render_bar(self.done, self.total, self.executions, time.monotonic() - self.started,
                          fetched=self.fetched)

    async def __aenter__(self) -> Progress:
        if self.tty:
            self._task = asyncio.create_task(self._draw())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()

    async def _draw(self) -> None:
        while True:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            await asyncio.sleep(self._every_s)
