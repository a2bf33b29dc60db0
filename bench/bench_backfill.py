"""Benchmark: `backfill --months 3` of 3 bots x 3 months x 30,000 executions into an empty database.

Compares the wall time with the floor the exchange's limits allow: the pages a bot must request
divided by the per-account rate (50 history requests/s; bots in parallel, so the slowest bot sets it).
Then runs the backfill again: everything must be found already present, no slower.

Everything is real: the simulated venue, the websocket listener (the only writer of fills),
PostgreSQL through PgBouncer and Redis of the test stack (ports from ALPHA_TEST_PORT_BASE).

    ALPHA_TEST_PORT_BASE=28400 .venv/bin/python bench/bench_backfill.py [--executions 30000] [--ip-limit 600]

`--ip-limit` is the venue's per-IP limit (Bybit: 600 per 5 s). At 600 it binds before the per-account
limits do (3 x 50/s > 120/s), so the floor is then the IP's; pass a large value to measure against
the per-account floor alone (the client is told the same limit).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import redis  # noqa: E402

from services.bybit_sim.handle import VenueAdmin  # noqa: E402
from tests.support import trade_sync_harness as h  # noqa: E402
from tests.support.stack import start_test_stack  # noqa: E402

QUERY_LIMIT_PER_S = 50


def _truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE trading.fills, trading.sync_runs, trading.backfill_progress RESTART IDENTITY")


def _listener_counters(stack) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The listener's own counters (`listener:counters`, refreshed by its heartbeat)."""
    time.sleep(1.0)
    r = redis.Redis(port=stack.redis.redis_port, password=stack.redis.redis_password.get_secret_value(),
                    decode_responses=True)
    try:
        return {k: int(v) for k, v in r.hgetall("listener:counters").items() if v.lstrip("-").isdigit()}
    finally:
        r.close()


def _cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process so far, with those of its children that exited (a
    PostgreSQL backend that ends moves its time to the postmaster's children's time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(root_pid: int | None) -> float:
    """CPU seconds of a process and its children (PostgreSQL backends)."""
    if root_pid is None:
        return 0.0
    pids, frontier = {root_pid}, [root_pid]
    while frontier:
        children = Path(f"/proc/{frontier[-1]}/task/{frontier.pop()}/children")
        for child in children.read_text().split() if children.exists() else []:
            pids.add(int(child))
            frontier.append(int(child))
    total = 0.0
    for pid in pids:
        try:
            total += _cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def _pid_of(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each process tree, and of the finished trade_sync runs (our children)."""
    snap = {name: _tree_cpu_s(pid) for name, pid in pids.items()}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    snap["trade_sync"] = usage.ru_utime + usage.ru_stime
    return snap


def _timed_backfill(env: dict[str, str]) -> tuple[float, list[dict]]:
    t0 = time.monotonic()
    res = h.run_cli(["backfill", "--months", "3", "--json"], env, timeout_s=900)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"backfill failed ({res.returncode}): {res.stderr[-2000:]}")
    return wall, res.json()


async def _venue_ids(admin_url: str) -> dict[str, set[str]]:
    async with VenueAdmin(admin_url) as admin:
        return {b: {r["execId"] for r in await admin.executions(k)} for b, _p, k, _s in h.ACCOUNTS}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executions", type=int, default=30_000)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--ip-limit", type=int, default=100_000)
    ap.add_argument("--windows-in-flight", type=int, default=None, help="TRADE_SYNC_WINDOWS_IN_FLIGHT per bot")
    ap.add_argument("--state-cache", type=Path, default=REPO / ".run" / "bench_backfill_state.json",
                    help="seeded venue state, reused when it exists (seeding 90,000 executions takes a while)")
    args = ap.parse_args()

    stack = start_test_stack()
    owner = stack.db.dsn("owner", direct=True)
    cache = args.state_cache
    marker = cache.with_suffix(".params")
    params = f"{args.months}:{args.executions}"
    if not cache.exists() or not marker.exists() or marker.read_text() != params:
        t0 = time.monotonic()
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.unlink(missing_ok=True)
        h.seed_state(cache, args.months, args.executions)
        marker.write_text(params)
        print(f"seeded 3 x {args.executions:,} executions over {args.months} months in {time.monotonic() - t0:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    state = tmp / "state.json"
    shutil.copy(cache, state)
    venue = h.start_venue(state, query_limit=QUERY_LIMIT_PER_S, ip_limit=args.ip_limit)
    listener = None
    try:
        r = redis.Redis(port=stack.redis.redis_port, password=stack.redis.redis_password.get_secret_value())
        r.flushall()
        r.close()
        _truncate(owner)
        env = h.base_env(stack.env, venue, TRADE_SYNC_IP_LIMIT_PER_5S=str(args.ip_limit), LOG_LEVEL="WARNING")
        if args.windows_in_flight is not None:
            env["TRADE_SYNC_WINDOWS_IN_FLIGHT"] = str(args.windows_in_flight)
        listener = h.start_listener(env, tmp / "listener.log", stack.redis.redis_port,
                                    stack.redis.redis_password.get_secret_value())
        _truncate(owner)  # the listener's start-up catch-up wrote the last day: empty the table again

        run_dir = stack.local.cfg.root
        pids = {"listener": listener.proc.pid, "PostgreSQL": _pid_of(run_dir / "postgres" / "data" / "postmaster.pid"),
                "PgBouncer": _pid_of(run_dir / "pgbouncer" / "pgbouncer.pid"),
                "Redis": _pid_of(run_dir / "redis" / "redis.pid"), "venue": venue.proc.pid if venue.proc else None}
        before = _listener_counters(stack)
        cpu_before = _cpu_snapshot(pids)
        first_wall, first = _timed_backfill(env)
        cpu_first = {k: v - cpu_before[k] for k, v in _cpu_snapshot(pids).items()}
        after = _listener_counters(stack)
        venue_ids = asyncio.run(_venue_ids(venue.admin_url))
        with psycopg.connect(owner) as conn:
            stored: dict[str, set[str]] = {}
            for bot_id, exec_id in conn.execute("SELECT bot_id, exec_id FROM trading.fills"):
                stored.setdefault(bot_id, set()).add(exec_id)
        second_wall, second = _timed_backfill(env)

        pages = {o["bot_id"]: o["pages"] for o in first}
        account_floor = max(pages.values()) / QUERY_LIMIT_PER_S
        ip_floor = sum(pages.values()) / (args.ip_limit / 5)
        floor = max(account_floor, ip_floor)
        print(f"venue: per-account limit {QUERY_LIMIT_PER_S} req/s, per-IP limit {args.ip_limit} per 5 s")
        for o in first:
            print(f"  {o['bot_id']:16} pages {o['pages']:4}  requests {o['requests']:4}  fetched {o['fetched']:6,}  "
                  f"inserted {o['inserted']:6,}  already present {o['already_present']:6,}")
        print(f"floor: per-account {account_floor:.2f} s (max pages {max(pages.values())} / {QUERY_LIMIT_PER_S}/s), "
              f"per-IP {ip_floor:.2f} s (total pages {sum(pages.values())} / {args.ip_limit / 5:.0f}/s)")
        print(f"first run (empty database): {first_wall:.2f} s wall = {first_wall / floor:.2f} x floor "
              f"(target <= 1.25); {sum(o['inserted'] for o in first):,} rows inserted, "
              f"{sum(o['fetched'] for o in first) / first_wall:,.0f} executions/s")
        fetch_s = max(o.get("fetch_seconds") or 0 for o in first)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("fills_written", "batches", "db_wait_ms",
                                                                 "redis_wait_ms", "stream_entries")}
        print(f"  listener during the first run: {delta['stream_entries']} stream entries, {delta['batches']} "
              f"batches, {delta['fills_written']:,} fills written, {delta['db_wait_ms'] / 1000:.1f} s waiting "
              f"for PostgreSQL, {delta['redis_wait_ms'] / 1000:.1f} s for Redis")
        print(f"  of which reading the exchange (slowest bot, from its start to its last page): {fetch_s:.2f} s = "
              f"{fetch_s / floor:.2f} x floor; the rest is start-up and the listener committing")
        print("  CPU seconds during the first run (2 shared cores): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(cpu_first.items(), key=lambda kv: -kv[1])) +
            f"; total {sum(cpu_first.values()):.1f} in {first_wall:.1f} s wall")
        print(f"second run (all present):   {second_wall:.2f} s wall = {second_wall / floor:.2f} x floor; "
              f"inserted {sum(o['inserted'] for o in second)}, already present "
              f"{sum(o['already_present'] for o in second):,}")
        ok_ids = all(stored.get(b, set()) == ids for b, ids in venue_ids.items())
        all_present = all(o["inserted"] == 0 and o["already_present"] == o["fetched"] for o in second)
        print(f"exec_id sets equal to the venue's for every bot: {ok_ids}; second run found all present: "
              f"{all_present}; second no slower than first: {second_wall <= first_wall * 1.05}")
        for o in first + second:
            if o["status"] != "ok":
                print(f"  not ok: {o['bot_id']} {o['status']} {o['error']}")
        print(json.dumps({"floor_s": round(floor, 3), "first_s": round(first_wall, 3), "first_fetch_s": round(fetch_s, 3),
                          "second_s": round(second_wall, 3), "first_ratio": round(first_wall / floor, 3),
                          "second_ratio": round(second_wall / floor, 3),
                          "pages": pages, "ids_equal": ok_ids, "all_present": all_present}))
        return 0 if ok_ids and all_present else 1
    finally:
        if listener is not None:
            listener.stop()
        venue.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
