"""Size-rotated log files for the local supervisor (as Docker's json-file driver does in production:
max-size 20m, max-file 5): `name.log` is written, then renamed `name.log.1` (older ones shifted up
to `name.log.{backups}`, the oldest dropped) when it reaches `max_bytes`. Whole lines only."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

MAX_BYTES = 20 * 1024 * 1024
BACKUPS = 4  # with the live file: 5 files, as max-file: "5"


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("max_bytes must be >= 1 and backups >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab", buffering=0)
        self._size = self._fh.tell()
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._fh.write(line)
            self._size += len(line)

    def _rotate(self) -> None:
        self._fh.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fh = open(self.path, "ab", buffering=0)
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def files(self) -> list[Path]:
        """Newest first."""
        names = [self.path] + [self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.backups + 1)]
        return [p for p in names if p.exists()]


def pump(stream: IO[bytes], log: RotatingLog) -> threading.Thread:
    """Copy a child's output into the log, line by line, until it closes its end."""
    def run() -> None:
        try:
            for line in iter(stream.readline, b""):
                log.write(line)
        finally:
            stream.close()
    thread = threading.Thread(target=run, name=f"log:{log.path.name}", daemon=True)
    thread.start()
    return thread
