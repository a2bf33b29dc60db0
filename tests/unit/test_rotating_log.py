"""The local supervisor's log files rotate by size, whole lines only, keeping N old files."""
from __future__ import annotations

import sys
from pathlib import Path

from infra.rotating_log import RotatingLog
from infra.run_local import Child, start


def lines(n0: int, n1: int, width: int = 100) -> list[bytes]:
    return [f"line {n:06d} ".ljust(width - 1, "x").encode() + b"\n" for n in range(n0, n1)]


def kept_lines(log: RotatingLog) -> list[bytes]:
    out: list[bytes] = []
    for path in reversed(log.files()):  # oldest first
        out += path.read_bytes().splitlines(keepends=True)
    return out


def test_rotates_by_size_and_keeps_a_contiguous_tail(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "svc.log", max_bytes=10_000, backups=3)
    written = lines(0, 1000)
    for line in written:
        log.write(line)
    log.close()
    assert [p.name for p in log.files()] == ["svc.log", "svc.log.1", "svc.log.2", "svc.log.3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.log", "svc.log.1", "svc.log.2", "svc.log.3"]
    assert all(p.stat().st_size <= 10_000 for p in log.files())
    assert all(p.stat().st_size == 10_000 for p in log.files()[1:])  # 100 whole lines each
    kept = kept_lines(log)
    assert kept == written[-len(kept):] and len(kept) == 400


def test_reopening_continues_the_file_and_its_size(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "svc.log", max_bytes=1_000, backups=1)
    for line in lines(0, 7):
        log.write(line)
    log.close()
    log = RotatingLog(tmp_path / "svc.log", max_bytes=1_000, backups=1)
    for line in lines(7, 12):
        log.write(line)
    log.close()
    assert (tmp_path / "svc.log.1").read_bytes() == b"".join(lines(0, 10))
    assert (tmp_path / "svc.log").read_bytes() == b"".join(lines(10, 12))


def test_a_long_line_is_never_split_and_zero_backups_keeps_one_file(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "svc.log", max_bytes=50, backups=0)
    long = b"y" * 500 + b"\n"
    for line in (b"short\n", long, b"after\n"):
        log.write(line)
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["svc.log"]
    assert (tmp_path / "svc.log").read_bytes() == b"after\n"


def test_supervisor_child_output_goes_through_the_rotating_log(tmp_path: Path) -> None:
    script = "import sys\nfor n in range(3000): print(f'child line {n:05d} ' + 'z' * 60)\nprint('err', file=sys.stderr)"
    child = Child("noisy", [sys.executable, "-c", script])
    for _run in range(2):  # a restart keeps writing the same rotating log
        start(child, {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}, log_dir=tmp_path, max_bytes=40_000, backups=2)
        assert child.proc is not None and child.proc.wait(timeout=60) == 0
        assert child.log_thread is not None
        child.log_thread.join(timeout=10)
    assert child.log is not None
    child.log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy.log", "noisy.log.1", "noisy.log.2"]
    assert all(p.stat().st_size <= 40_000 for p in tmp_path.iterdir())
    kept = kept_lines(child.log)
    assert kept[-1] == b"err\n" and kept[-2].startswith(b"child line 02999 ")
    body = [line for line in kept if line.startswith(b"child")]
    numbers = [int(line.split()[2]) for line in body]
    assert numbers == list(range(numbers[0], 3000))  # a contiguous tail, no line lost or split

