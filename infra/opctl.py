"""Operators' commands against the local platform, as in production (`docker exec trade_sync_service
python main.py ...`), with the local stack's settings and keys loaded here, so they work right after
`make run` in any shell:

    python -m infra.opctl backfill --months N [--bot ID] [--symbol S]    (make backfill MONTHS=3 [BOT=..] [SYMBOL=..])
    python -m infra.opctl sync [--hours H] [--bot ID] [--symbol S]       (make sync [HOURS=..] [BOT=..] [SYMBOL=..])
    python -m infra.opctl sync-status [--json]                           (make sync-status)
    python -m infra.opctl cli COMMAND [ARGS...]                          (make cli CMD="analytics 7d")

Settings come from .run/stack.env, .run/local-keys.env and .run/venue.env (written by `make run`;
`--run-dir` or ALPHA_RUN_DIR elsewhere). Empty values count as not given (Make passes them so).
Bad input: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
EXIT_USAGE = 2
RUN_FILES = ("stack.env", "local-keys.env", "venue.env")
C2_COMMANDS = ("status", "positions", "balance", "analytics", "performance", "daily", "fills")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` or `export KEY='value'` lines, as the local stack writes them."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        parts = shlex.split(value) if value else [""]
        out[key.strip()] = parts[0] if parts else ""
    return out


def local_env(run_dir: Path) -> dict[str, str]:
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise UsageError(f"no local platform in {run_dir} (missing {', '.join(missing)}): run `make run` first")
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET")) and not k.startswith("BYBIT_")}
    for name in RUN_FILES:
        env.update(read_env_file(run_dir / name))
    env.setdefault("LOG_FORMAT", "console")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _opt(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="opctl", add_help=True)
    ap.add_argument("--run-dir", type=Path, default=Path(os.environ.get("ALPHA_RUN_DIR", REPO / ".run")))
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bf = sub.add_parser("backfill")
    bf.add_argument("--months", default="")
    bf.add_argument("--bot", default="")
    bf.add_argument("--symbol", default="")
    sy = sub.add_parser("sync")
    sy.add_argument("--hours", default="")
    sy.add_argument("--bot", default="")
    sy.add_argument("--symbol", default="")
    st = sub.add_parser("sync-status")
    st.add_argument("--json", action="store_true")
    cli = sub.add_parser("cli")
    cli.add_argument("words", nargs=argparse.REMAINDER)
    return ap


def command_argv(args: argparse.Namespace) -> list[str]:
    """The production command for these arguments (trade_sync's main.py, or the C2 terminal)."""
    trade_sync = [sys.executable, str(REPO / "services" / "trade_sync" / "main.py")]
    if args.command == "backfill":
        if not args.months.strip():
            raise UsageError("MONTHS is required, e.g. `make backfill MONTHS=3`")
        return [*trade_sync, "backfill", "--months", args.months.strip(), *_opt("--bot", args.bot),
                *_opt("--symbol", args.symbol)]
    if args.command == "sync":
        return [*trade_sync, "sync", *_opt("--hours", args.hours), *_opt("--bot", args.bot),
                *_opt("--symbol", args.symbol)]
    if args.command == "sync-status":
        return [*trade_sync, "status", *(["--json"] if args.json else [])]
    words = [w for word in args.words for w in shlex.split(word)]
    if not words:
        raise UsageError(f"CMD is required, e.g. `make cli CMD=\"analytics 7d\"` (one of {', '.join(C2_COMMANDS)})")
    if words[0] not in C2_COMMANDS:
        raise UsageError(f"unknown report {words[0]!r}; one of {', '.join(C2_COMMANDS)}")
    return [sys.executable, "-m", "services.telegram_c2.main", "cli", *words]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        cmd = command_argv(args)
        env = local_env(args.run_dir)
    except UsageError as exc:
        print(f"opctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return subprocess.run(cmd, cwd=REPO, env=env).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
