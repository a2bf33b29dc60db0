"""Chaos run: the whole platform locally under >= 100 random faults, then proof that nothing was lost.

Runs the test stack (PostgreSQL, PgBouncer, Redis; ports from ALPHA_TEST_PORT_BASE), the simulated venue,
the listener (behind a proxy that can lose a PostgreSQL answer) and trade_sync serving its schedule, each
restarted like a container when it dies; streams fills from the three bots' accounts while a seeded schedule
(printed first) injects faults: SIGKILL of the listener or trade_sync, a restart of PostgreSQL, PgBouncer or
Redis alone, WebSocket reset / clean close / 60 s silence, duplicated and reordered pushes, 10006 and 5xx
bursts on REST, a lost PostgreSQL answer to a fills batch. Afterwards, against the venue's own list of
executions: lost 0 and duplicated 0, field by field; every fill announced at least once on its bot's durable
feed `fills:{bot_id}` (fills_channel coverage reported beside it); Redis positions equal to the venue's within
5 s of the last fault; the PnL aggregates equal to a replay. Exit status 1 when a check fails.

    ALPHA_TEST_PORT_BASE=31100 .venv/bin/python bench/chaos_run.py [--seed 1] [--fills 50000] [--minutes 10]
        [--faults 100] [--rate FILLS_PER_S] [--quiet-tail 20] [--work-dir DIR]

No fault is active in the last `--quiet-tail` seconds of the stream (default 20 s): the listener's production
connection timing needs that long to notice some faults (a silence is detected after 30 s without a frame, and
an auth sent while it lasted times out after 10 s), so the positions are judged 5 s after the stream ends.

The short variant (`--fills 5000 --minutes 1.67 --faults 13`) runs in `make test`
(tests/e2e/test_chaos_short.py).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.chaos.run import ChaosParams, figures, report_json, run_chaos  # noqa: E402


def positive(kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fills", type=positive(int), default=50_000, help="fills over the three accounts")
    ap.add_argument("--minutes", type=positive(float), default=10.0, help="length of the stream")
    ap.add_argument("--faults", type=positive(int), default=100)
    ap.add_argument("--rate", type=positive(float), default=None,
                    help="fills/s over the three accounts (default fills / minutes; given, it sets the length)")
    ap.add_argument("--quiet-tail", type=float, default=20.0,
                    help="seconds at the end of the stream with no fault active (0: faults up to the end)")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the processes' logs go (default: a new temp dir)")
    args = ap.parse_args(argv)
    params = ChaosParams(seed=args.seed, fills=args.fills, minutes=args.minutes, faults=args.faults, rate=args.rate,
                         quiet_tail_s=args.quiet_tail, work_dir=args.work_dir)
    report = asyncio.run(run_chaos(params, log=lambda line: print(line, flush=True)))
    print(figures(report), flush=True)
    print(report_json(report), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
