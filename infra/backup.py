"""Database backups: `pg_dump` of the schema `trading`, daily at BACKUP_AT (UTC), kept 30 daily, 12
weekly and 12 monthly; and restore. Standard library only: it runs in the `postgres_backup`
container (the postgres image, whose pg_dump matches the server) as well as locally.

    python -m infra.backup serve                 # the container: a dump every day at BACKUP_AT, then prune
    python -m infra.backup once [--dir DIR]      # one dump now, then prune (make backup)
    python -m infra.backup restore FILE [--database DB]   # into trading_db (make restore FILE=...)
    python -m infra.backup list [--dir DIR]

Connection from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER (the schema owner) and
POSTGRES_PASSWORD, handed to pg_dump/pg_restore in their environment (never on the command line).
Bad input: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 2
PREFIX = "trading_db-"
SUFFIX = ".dump"
_NAME = re.compile(r"^trading_db-(\d{8}T\d{6}Z)\.dump$")
_STAMP = "%Y%m%dT%H%M%SZ"


class UsageError(Exception):
    pass


# ---- pure: names, schedule, retention -------------------------------------------------------------
def dump_name(at: datetime) -> str:
    return f"{PREFIX}{at.astimezone(UTC).strftime(_STAMP)}{SUFFIX}"


def parse_dump_name(name: str) -> datetime | None:
    m = _NAME.match(name)
    return datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC) if m else None


def parse_backup_at(text: str) -> time:
    """`HH:MM` (or `HH:MM:SS`) in UTC."""
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?", text.strip())
    if not m:
        raise UsageError(f"BACKUP_AT must be HH:MM or HH:MM:SS (UTC), e.g. 03:00, not {text!r}")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), tzinfo=UTC)


def next_run(now: datetime, at: time) -> datetime:
    """The first moment at `at` (UTC) strictly after `now`."""
    now = now.astimezone(UTC)
    candidate = datetime.combine(now.date(), at.replace(tzinfo=None), tzinfo=UTC)
    return candidate if candidate > now else candidate + timedelta(days=1)


@dataclass(frozen=True)
class Retention:
    daily: int = 30
    weekly: int = 12
    monthly: int = 12


def to_keep(stamps: Iterable[datetime], policy: Retention = Retention()) -> set[datetime]:
    """Grandfather-father-son: the newest dump of each of the newest `daily` days that have one, of
    each of the newest `weekly` ISO weeks and of the newest `monthly` months. Counting periods that
    have a dump (not calendar periods back from today) means a stretch of failed backups never
    makes the old ones expire."""
    ordered = sorted(set(stamps), reverse=True)
    keep: set[datetime] = set()
    for count, period in ((policy.daily, lambda d: d.date()),
                          (policy.weekly, lambda d: tuple(d.isocalendar())[:2]),
                          (policy.monthly, lambda d: (d.year, d.month))):
        seen: list[object] = []
        for stamp in ordered:  # newest first: the first of each period is its newest dump
            key = period(stamp)
            if key in seen:
                continue
            if len(seen) == count:
                break
            seen.append(key)
            keep.add(stamp)
    return keep


# ---- IO ------------------------------------------------------------------------------------------
def pg_env() -> dict[str, str]:
    """libpq's environment from the platform's variable names."""
    names = {"POSTGRES_HOST": "PGHOST", "POSTGRES_PORT": "PGPORT", "POSTGRES_DB": "PGDATABASE",
             "POSTGRES_USER": "PGUSER", "POSTGRES_PASSWORD": "PGPASSWORD"}
    defaults = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_DB": "trading_db",
                "POSTGRES_USER": "trading_user"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for var, pg in names.items():
        value = os.environ.get(var) or defaults.get(var)
        if value is None:
            raise UsageError(f"{var} is missing (the schema owner's password)")
        env[pg] = value
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def dumps_in(folder: Path) -> dict[datetime, Path]:
    out = {}
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        stamp = parse_dump_name(path.name)
        if stamp is not None:
            out[stamp] = path
    return out


def backup_once(folder: Path, now: datetime | None = None) -> Path:
    """pg_dump (custom format) to a private temporary file, checked with pg_restore --list, then
    renamed into place: a file with a dump's name is always a whole, readable dump."""
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    env = pg_env()
    target = folder / dump_name(now)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=SUFFIX)  # 0600
    os.close(fd)
    try:
        res = subprocess.run(["pg_dump", "--format=custom", "--schema=trading", "--file", tmp],
                             env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {res.stderr.strip()[-500:]}")
        check = subprocess.run(["pg_restore", "--list", tmp], env=env, capture_output=True, text=True)
        if check.returncode != 0 or "TABLE DATA trading fills" not in check.stdout:
            raise RuntimeError(f"the dump does not read back: {check.stderr.strip()[-300:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def prune(folder: Path, policy: Retention) -> list[Path]:
    found = dumps_in(folder)
    keep = to_keep(found, policy)
    removed = []
    for stamp, path in sorted(found.items()):
        if stamp not in keep:
            path.unlink()
            removed.append(path)
    return removed


def restore(file: Path, database: str | None = None) -> None:
    """Into an existing database (the owner's): the schema `trading` is dropped and recreated from
    the dump in one transaction, so a failed restore changes nothing. Stop the services first."""
    if not file.is_file():
        raise UsageError(f"no such backup file: {file}")
    env = pg_env()
    if database:
        env["PGDATABASE"] = database
    check = subprocess.run(["pg_restore", "--list", str(file)], env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise UsageError(f"{file} is not a pg_dump archive")
    res = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                          "--exit-on-error", "--dbname", env["PGDATABASE"], str(file)],
                         env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"pg_restore failed (nothing changed): {res.stderr.strip()[-500:]}")


def _policy_from_env() -> Retention:
    values = []
    for var, default in (("BACKUP_KEEP_DAILY", 30), ("BACKUP_KEEP_WEEKLY", 12), ("BACKUP_KEEP_MONTHLY", 12)):
        text = os.environ.get(var) or str(default)
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{var} must be a whole number >= 1, not {text!r}")
        values.append(int(text))
    return Retention(*values)


def serve(folder: Path) -> int:
    at = parse_backup_at(os.environ.get("BACKUP_AT") or "03:00")
    policy = _policy_from_env()
    pg_env()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"backup: daily at {at.strftime('%H:%M')} UTC into {folder}, keeping {policy}", flush=True)
    while not stop.is_set():
        due = next_run(datetime.now(UTC), at)
        if stop.wait((due - datetime.now(UTC)).total_seconds()):
            break
        try:
            path = backup_once(folder)
            removed = prune(folder, policy)
            print(f"backup: wrote {path.name} ({path.stat().st_size} bytes); removed "
                  f"{', '.join(p.name for p in removed) or 'nothing'}", flush=True)
        except (RuntimeError, OSError) as exc:  # the next day tries again; the log says why
            print(f"backup: FAILED: {exc}", file=sys.stderr, flush=True)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="backup")
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("BACKUP_DIR", "backups")))
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("serve")
    sub.add_parser("once")
    sub.add_parser("list")
    rs = sub.add_parser("restore")
    rs.add_argument("file", nargs="?", default="")
    rs.add_argument("--database", default=None)
    try:
        args = ap.parse_args(argv)
        if args.command == "serve":
            return serve(args.dir)
        if args.command == "once":
            path = backup_once(args.dir)
            removed = prune(args.dir, _policy_from_env())
            print(f"backup: wrote {path} ({path.stat().st_size} bytes); removed {len(removed)} old")
            return 0
        if args.command == "list":
            for stamp, path in sorted(dumps_in(args.dir).items()):
                print(f"{stamp.isoformat()}  {path.stat().st_size:>12}  {path}")
            return 0
        if not args.file:
            raise UsageError("FILE is required, e.g. `make restore FILE=.run/backups/trading_db-20260101T030000Z.dump`")
        restore(Path(args.file), args.database)
        print(f"backup: restored {args.file}")
        return 0
    except UsageError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
