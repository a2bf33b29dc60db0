"""Listener benchmark against the simulated venue, with the full durable path (PgBouncer, commit, Redis, publish).

Prints: latency from the venue sending an execution to a `fills_channel` subscriber receiving it
(p50/p95/p99) at fixed rates; the highest sustained rate (3 bots pushing at once); the ceiling (the
same rows inserted straight through PgBouncer in batches, no WebSocket, no Redis) and the ratio; the
listener's RSS with 3 bots.

    ALPHA_TEST_PORT_BASE=26400 .venv/bin/python bench/bench_listener.py [--rates 100,500] [--seconds 10]
        [--steps 1000,2000,3000,4000,5000] [--step-seconds 5] [--burst 12000] [--burst-rate 20000]

Latency uses the venue's execTime (wall-clock ms, stamped when the venue creates the fill, before it
sends) and the subscriber's wall clock: same machine, 1 ms resolution.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.bybit_sim.handle import VenueAdmin, VenueProcess  # noqa: E402
from services.websocket_listener.ingest import FILL_SQL  # noqa: E402
from services.websocket_listener.rows import FILL_COLUMNS, rows_json  # noqa: E402
from shared.db.pool import open_pool  # noqa: E402
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env  # noqa: E402
from tests.support.stack import start_test_stack  # noqa: E402

BOTS = list(KEYS)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
# Production timing; the scheduled catch-up (a REST re-read of everything since the previous pass,
# every 5 min) is pushed out of the run so the figures are those of the streaming path.
PRODUCTION_TIMING = {"LISTENER_PING_INTERVAL_S": "20", "LISTENER_DEAD_AFTER_S": "30",
                     "LISTENER_HEARTBEAT_EVERY_S": "1", "LISTENER_HEALTH_MAX_AGE_S": "60",
                     "LISTENER_CATCHUP_EVERY_S": "3600"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Subscriber:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.received: dict[str, tuple[float, dict[str, Any]]] = {}

    async def run(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe("fills_channel")
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                now = time.time()
                data = json.loads(msg["data"])
                self.received.setdefault(data["exec_id"], (now, data))

    async def wait_for(self, exec_ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not exec_ids <= self.received.keys():
            if time.monotonic() > deadline:
                missing = len(exec_ids - self.received.keys())
                raise SystemExit(f"bench: {missing} fills not published within {timeout_s}s")
            await asyncio.sleep(0.05)


def exec_ms(message: dict[str, Any]) -> float:
    return datetime.fromisoformat(message["exec_time"].replace("Z", "+00:00")).timestamp() * 1000


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of a process and all its children alive now (PostgreSQL backends, PgBouncer)."""
    pids, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split() if \
                Path(f"/proc/{parent}/task/{parent}/children").exists() else []:
            pids.add(int(child))
            frontier.append(int(child))
    total = 0.0
    for pid in pids:
        try:
            total += cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def pid_of(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def offer(admin: VenueAdmin, sub: Subscriber, rate: int, seconds: float,
                bots: list[str], prefix: str) -> tuple[set[str], list[float], float]:
    """The venue pushes `rate` fills/s (split over `bots`) for `seconds`; returns the fills, their latencies (ms)
    and the rate the venue actually achieved."""
    per_bot = rate / len(bots)
    gens = [await admin.generate(KEYS[b][1], count=max(1, int(per_bot * seconds)), rate_per_s=per_bot,
                                 symbols=SYMBOLS, prefix=prefix) for b in bots]
    statuses = [await admin.wait_generation(g, timeout_s=seconds * 5 + 60) for g in gens]
    ids = generated_ids(statuses)
    await sub.wait_for(ids, 300)
    span_s = (max(s["finished_ms"] for s in statuses) - min(s["started_ms"] for s in statuses)) / 1000
    lat = [sub.received[i][0] * 1000 - exec_ms(sub.received[i][1]) for i in ids]
    return ids, lat, len(ids) / span_s if span_s > 0 else float("inf")


def generated_ids(statuses: list[dict[str, Any]]) -> set[str]:
    """The fills the generations made, from their final status (no re-read of the venue's whole history while
    the listener is still catching up, so the harness does not compete with it for CPU)."""
    ids = {i for s in statuses for i in s["exec_ids"]}
    if len(ids) != sum(s["done"] for s in statuses):
        raise SystemExit(f"bench: generations made {len(ids)} distinct fills for {sum(s['done'] for s in statuses)} orders")
    return ids


async def run(args: argparse.Namespace) -> None:
    stack = start_test_stack()
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                                             "WHERE schemaname = 'trading' AND tablename <> 'schema_migrations'")]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    platform = aioredis.Redis(port=stack.redis.redis_port, password=stack.redis.redis_password.get_secret_value(),
                              decode_responses=True)
    await platform.flushall()
    accounts = [(key, secret, "100000000") for _, key, secret in KEYS.values()]
    limits = ["--order-rate-limit", "1000000", "--query-rate-limit", "100000", "--ip-rate-limit", "1000000"]
    venue = VenueProcess(accounts, speed=1.0, extra_args=limits).start()
    listener = ListenerProcess(listener_env(stack, venue, BOTS, **PRODUCTION_TIMING, LOG_LEVEL="WARNING")).start()
    sub = Subscriber(platform)
    sub_task = asyncio.create_task(sub.run())
    try:
        await listener.wait_healthy(stack, BOTS, timeout_s=60)
        assert listener.proc is not None
        pid = listener.proc.pid
        async with VenueAdmin(venue.admin_url) as admin:
            await asyncio.sleep(2.0)
            idle_rss, _ = rss_mb(pid)
            print(f"listener pid {pid}; 3 bots; venue {venue.base_url}; PostgreSQL port {stack.local.cfg.pg_port}, PgBouncer {stack.local.cfg.pgb_port}")
            print("\nlatency venue-send -> fills_channel subscriber")
            print(f"{'rate/s':>8} {'fills':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
            for rate in args.rates:
                ids, lat, _ = await offer(admin, sub, rate, args.seconds, BOTS[:1], f"r{rate}")
                print(f"{rate:>8} {len(ids):>7} {pct(lat, 50):>8.1f} {pct(lat, 95):>8.1f} {pct(lat, 99):>8.1f} "
                      f"{max(lat):>8.1f}")

            run_dir = stack.local.cfg.root
            assert venue.proc is not None
            others = {"PostgreSQL": pid_of(run_dir / "postgres" / "data" / "postmaster.pid"),
                      "PgBouncer": pid_of(run_dir / "pgbouncer" / "pgbouncer.pid"),
                      "Redis": pid_of(run_dir / "redis" / "redis.pid"), "venue": venue.proc.pid}

            async def cpu_and_batches() -> tuple[float, float, float, float, int]:
                """CPU seconds so far of the listener, PostgreSQL, the venue and this script (the subscriber);
                the listener's batch count."""
                batches = int((await platform.hgetall("listener:counters")).get("batches", 0))
                return (cpu_s(pid), tree_cpu_s(others["PostgreSQL"]),  # type: ignore[arg-type]
                        cpu_s(venue.proc.pid), cpu_s(os.getpid()), batches)  # type: ignore[union-attr]

            print(f"\nstep test: {args.step_seconds}s per offered rate, split over the 3 bots; kept up = p99 under "
                  f"{args.keep_up_ms} ms and the venue delivered >= 90% of the offered rate")
            print(f"{'offered/s':>10} {'venue/s':>8} {'fills':>7} {'p50 ms':>8} {'p99 ms':>8} {'kept up':>8}   "
                  "CPU us/fill: listener, PostgreSQL, venue, subscriber; fills per batch")
            highest = 0
            for rate in args.steps:
                before = await cpu_and_batches()
                ids, lat, venue_rate = await offer(admin, sub, rate, args.step_seconds, BOTS, f"s{rate}")
                used = [(a - b) / len(ids) * 1e6 for a, b in zip(await cpu_and_batches(), before)]
                kept = pct(lat, 99) < args.keep_up_ms and venue_rate >= 0.9 * rate
                highest = rate if kept and rate > highest else highest
                print(f"{rate:>10} {venue_rate:>8,.0f} {len(ids):>7} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} "
                      f"{'yes' if kept else 'no':>8}   {used[0]:.0f}, {used[1]:.0f}, {used[2]:.0f}, {used[3]:.0f}; "
                      f"{1e6 / used[4] if used[4] else float('nan'):.0f}")
            print(f"highest sustained rate in the steps: {highest:,} fills/s")

            print(f"\nburst (overload): {args.burst} fills per bot, 3 bots at once, venue asked for {args.burst_rate}/s "
                  "each; throughput = fills / (last publish - first venue send)")
            others_before = {k: tree_cpu_s(v) for k, v in others.items() if v}
            cpu_before = cpu_s(pid)
            gens = [await admin.generate(KEYS[b][1], count=args.burst, rate_per_s=args.burst_rate, symbols=SYMBOLS,
                                         prefix="burst", rows_per_frame=100) for b in BOTS]
            statuses = [await admin.wait_generation(g, timeout_s=300) for g in gens]
            burst_ids = generated_ids(statuses)
            await sub.wait_for(burst_ids, 300)
            cpu_per_fill_us = (cpu_s(pid) - cpu_before) / len(burst_ids) * 1e6
            others_us = {k: (tree_cpu_s(others[k]) - v) / len(burst_ids) * 1e6  # type: ignore[arg-type]
                         for k, v in others_before.items()}
            venue_span_s = (max(s["finished_ms"] for s in statuses) - min(s["started_ms"] for s in statuses)) / 1000
            sent = [exec_ms(sub.received[i][1]) / 1000 for i in burst_ids]
            recv = [sub.received[i][0] for i in burst_ids]
            span_s = max(recv) - min(sent)
            sustained = len(burst_ids) / span_s
            venue_rate = len(burst_ids) / venue_span_s if venue_span_s > 0 else float("inf")
            burst_lat = [(r - s) * 1000 for r, s in zip(recv, sent)]
            rss_now, rss_peak = rss_mb(pid)
            print(f"  {len(burst_ids)} fills from first venue send to last publish in {span_s:.2f}s: "
                  f"{sustained:,.0f} fills/s (venue generated them at {venue_rate:,.0f}/s; "
                  f"latency under this load p50 {pct(burst_lat, 50):.0f} ms, p99 {pct(burst_lat, 99):.0f} ms)")
            print(f"  listener CPU per fill in this run: {cpu_per_fill_us:.0f} us (all frames of a fill: execution, "
                  f"order, position, wallet), i.e. {1e6 / cpu_per_fill_us:,.0f} fills/s if it had a core to itself")
            print("  CPU per fill of the other processes on these 2 cores: " + ", ".join(
                f"{k} {v:.0f} us" for k, v in others_us.items()) + f"; total with the listener "
                f"{cpu_per_fill_us + sum(others_us.values()):.0f} us, i.e. at most "
                f"{2e6 / (cpu_per_fill_us + sum(others_us.values())):,.0f} fills/s on 2 idle cores")
            print(f"\nlistener RSS with 3 bots: {idle_rss:.1f} MB idle after start, {rss_now:.1f} MB after the runs, "
                  f"{rss_peak:.1f} MB peak (VmHWM)")
            counters = await platform.hgetall("listener:counters")
            print("listener counters: " + ", ".join(f"{k}={counters[k]}" for k in
                                                       ("fills_written", "duplicates", "batches", "dead_lettered",
                                                        "reconnects", "catchups", "catchup_rows",
                                                        "position_mismatches", "db_wait_ms", "redis_wait_ms") if k in counters))
    finally:
        code = listener.terminate()
        sub_task.cancel()
        venue.close()
    print(f"listener stopped with exit code {code}")

    # Ceiling: the very same rows, re-inserted straight through PgBouncer in batches (no WebSocket, no Redis).
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        cur = conn.execute(f"SELECT {', '.join(FILL_COLUMNS)} FROM trading.fills WHERE exec_id = ANY(%s) "
                           "ORDER BY exec_time, seq", (list(burst_ids),))
        rows = cur.fetchall()
        conn.execute("DELETE FROM trading.fills WHERE exec_id = ANY(%s)", (list(burst_ids),))
    pool = await open_pool(stack.db, "listener", min_size=1, max_size=1)
    started = time.perf_counter()
    async with pool.connection() as conn:
        for i in range(0, len(rows), args.ceiling_batch):
            chunk = rows[i:i + args.ceiling_batch]
            async with conn.transaction():
                await conn.execute(FILL_SQL, (uuid.uuid4(), rows_json(FILL_COLUMNS, chunk)))
    ceiling = len(rows) / (time.perf_counter() - started)
    await pool.close()
    await platform.aclose()
    print(f"\nceiling: {len(rows)} same rows inserted through PgBouncer in batches of {args.ceiling_batch}: "
          f"{ceiling:,.0f} rows/s")
    print(f"burst throughput / ceiling = {sustained:,.0f} / {ceiling:,.0f} = {sustained / ceiling:.0%}")
    print(f"highest kept-up step / ceiling = {highest:,} / {ceiling:,.0f} = {highest / ceiling:.0%}")
    print(f"\ncpu count {os.cpu_count()}; the machine is shared, figures vary from run to run")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="100,500", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--steps", default="1000,2000,3000,4000,5000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--step-seconds", type=float, default=5.0)
    ap.add_argument("--keep-up-ms", type=float, default=250.0)
    ap.add_argument("--burst", type=int, default=12000, help="fills per bot in the sustained run")
    ap.add_argument("--burst-rate", type=int, default=20000)
    ap.add_argument("--ceiling-batch", type=int, default=1000)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
