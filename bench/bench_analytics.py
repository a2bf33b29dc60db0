"""`/analytics all` at scale: seed synthetic fills (3 bots x 20 symbols) and time the report
server-side (queries through PgBouncer as c2_user, plus Redis positions, plus formatting).

    ALPHA_TEST_PORT_BASE=27410 .venv/bin/python bench/bench_analytics.py --fills 1000000
    ALPHA_TEST_PORT_BASE=27410 .venv/bin/python bench/bench_analytics.py --fills 10000000

The stack is the test stack at ALPHA_TEST_PORT_BASE (started and migrated if needed); use a base of
its own, the seed is kept between runs and only the missing rows are added (the 10M run extends the
1M one). Rows are generated inside PostgreSQL (`generate_series`) and inserted as listener_user
through PgBouncer, in chunks in execution order; the insert trigger queues them and each chunk is
then applied to the PnL aggregates with `trading.pnl_refresh()`, as the listener's refresher does.
Each (bot, symbol) trades round trips of five executions: open 2 lots, add 1, a funding charge,
reduce 2, close 1; long and short alternate; one execution every 190 s per pair.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.telegram_c2.formatting import format_analytics, format_performance  # noqa: E402
from services.telegram_c2.service import open_backends  # noqa: E402
from shared.bots import BOTS  # noqa: E402
from shared.queries.reports import Reports  # noqa: E402
from tests.support.stack import start_test_stack  # noqa: E402

CHUNK = 500_000
SEED_SQL = """
INSERT INTO trading.fills (bot_id, symbol, exec_id, order_id, client_order_id, side, exec_type, exec_price,
                           exec_qty, exec_value, exec_time, commission, seq, source)
SELECT bot, sym, 'bench-' || n, 'bench-o-' || (n / 5), CASE WHEN typ = 'Trade' THEN bot || '-bench-' || n END,
       side, typ, price, qty, price * qty, t,
       CASE WHEN typ = 'Trade' THEN round(qty * price * 0.00055, 8)
            ELSE round(qty * price * 0.0001 * CASE WHEN random() < 0.6 THEN 1 ELSE -1 END, 8) END,
       k, 'ws'
FROM (
    SELECT n, k, (ARRAY['shortseller_001', 'lxalgo_001', 'momentum_001'])[pair %% 3 + 1] AS bot,
           'SYM' || lpad((pair / 3)::text, 2, '0') || 'USDT' AS sym,
           CASE WHEN s = 2 THEN 'Funding' ELSE 'Trade' END AS typ,
           CASE WHEN (CASE WHEN s IN (0, 1, 2) THEN dir ELSE -dir END) = 1 THEN 'Buy' ELSE 'Sell' END AS side,
           (CASE s WHEN 0 THEN 2 WHEN 1 THEN 1 WHEN 2 THEN 3 WHEN 3 THEN 2 ELSE 1 END) * 0.01 AS qty,
           round(((100 + pair * 37) * (1 + 0.05 * sin(k / 2000.0) + (random() - 0.5) * 0.004))::numeric, 2) AS price,
           timestamptz '2025-01-01 00:00:00+00' + k * interval '190 seconds' + pair * interval '1 second' AS t
    FROM (SELECT n, pair, k, k %% 5 AS s, CASE WHEN (k / 5) %% 2 = 0 THEN 1 ELSE -1 END AS dir
            FROM (SELECT n, (n - 1) %% 60 AS pair, (n - 1) / 60 AS k FROM generate_series(%s::bigint, %s::bigint) n) a) b
) c
"""


def seed(dsn: str, target: int) -> None:
    with psycopg.connect(dsn, prepare_threshold=None, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM trading.fills WHERE exec_id LIKE 'bench-%%'").fetchone()[0]
        start = have + 1
        if start > target:
            print(f"seed: {have:,} rows already there")
            return
        print(f"seed: {have:,} rows there, adding {target - have:,}")
        t_all = time.perf_counter()
        while start <= target:
            end = min(target, start + CHUNK - 1)
            t0 = time.perf_counter()
            conn.execute(SEED_SQL, (start, end))
            dt = time.perf_counter() - t0
            t1 = time.perf_counter()
            conn.execute("SELECT trading.pnl_refresh()")
            dr = time.perf_counter() - t1
            print(f"  rows {start:,}..{end:,}: inserted in {dt:.1f} s ({(end - start + 1) / dt:,.0f} rows/s), "
                  f"applied to the PnL aggregates in {dr:.1f} s", flush=True)
            start = end + 1
        print(f"seed: {time.perf_counter() - t_all:.0f} s in all", flush=True)
        conn.execute("VACUUM ANALYZE trading.fills")
        conn.execute("VACUUM ANALYZE trading.pnl_daily")
        conn.execute("VACUUM ANALYZE trading.round_trips")


async def measure(stack, iterations: int) -> None:  # type: ignore[no-untyped-def]
    pool, redis_by_db = await open_backends(stack.db, stack.redis)
    try:
        for spec in BOTS.values():  # open positions for the unrealised figure, as the listener keeps them
            r = redis_by_db[spec.redis_db]
            for i in range(20):
                await r.set(f"position:{spec.bot_id}:SYM{i:02d}USDT", json.dumps(
                    {"size": "0.03", "side": "Buy", "avg_price": "100", "unrealized_pnl": "1.5",
                     "mark_price": "150", "liq_price": "50", "updated_at": "2025-12-01T00:00:00Z"}))
        reports = Reports(pool, redis_by_db)
        async with pool.connection() as conn:
            n_fills, n_days, n_trips = await (await conn.execute(
                """SELECT (SELECT count(*) FROM trading.fills), (SELECT count(*) FROM trading.pnl_daily),
                          (SELECT count(*) FROM trading.round_trips)""")).fetchone()
            trades, volume, fees = await (await conn.execute(
                """SELECT count(*) FILTER (WHERE exec_type = 'Trade'),
                          sum(exec_price * exec_qty) FILTER (WHERE exec_type = 'Trade'),
                          sum(commission) FILTER (WHERE exec_type <> 'Funding') FROM trading.fills""")).fetchone()
        print(f"data: {n_fills:,} fills, {n_days:,} pnl_daily rows, {n_trips:,} round trips")

        async def timed(label: str, fn) -> str:  # type: ignore[no-untyped-def]
            for _ in range(3):
                await fn()
            samples = []
            for _ in range(iterations):
                t0 = time.perf_counter()
                text = await fn()
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            print(f"{label}: p50 {statistics.median(samples):.1f} ms, p95 {samples[int(len(samples) * 0.95) - 1]:.1f} ms, "
                  f"min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms ({iterations} runs)")
            return text

        async def analytics_all() -> str:
            return format_analytics(await reports.analytics("all"))

        text = await timed("/analytics all (query + format)", analytics_all)
        await timed("/analytics 7d", lambda: _fmt(reports.analytics("7d")))
        await timed("/performance (all bots, no chart)", lambda: _perf(reports))
        report = await reports.analytics("all")
        assert report.totals.trades == trades and report.totals.volume == volume and report.totals.fees == fees, \
            "aggregates disagree with a full scan of trading.fills"
        print("check: trade count, volume and fees equal a full scan of trading.fills")
        print("\n" + text)
    finally:
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()


async def _fmt(coro) -> str:  # type: ignore[no-untyped-def]
    return format_analytics(await coro)


async def _perf(reports: Reports) -> str:
    return format_performance(await reports.performance())


def listener_batch_cost(stack, batches: int = 50) -> None:  # type: ignore[no-untyped-def]
    """The listener's commits (120-row batches appended after the seed: the trigger only queues them)
    and the refresh that applies each batch to the PnL aggregates afterwards, off the write path."""
    with psycopg.connect(stack.db.dsn("listener"), prepare_threshold=None, autocommit=True) as conn:
        base = conn.execute("SELECT count(*) FROM trading.fills WHERE exec_id LIKE 'bench-%%'").fetchone()[0]
        inserts, refreshes = [], []
        for b in range(batches):
            start = base + 1 + b * 120
            t0 = time.perf_counter()
            conn.execute(SEED_SQL, (start, start + 119))
            t1 = time.perf_counter()
            conn.execute("SELECT trading.pnl_refresh()")
            inserts.append((t1 - t0) * 1000)
            refreshes.append((time.perf_counter() - t1) * 1000)
        for label, samples in (("insert of a 120-row batch as listener_user (2 rows per pair)", inserts),
                               ("pnl_refresh() of that batch", refreshes)):
            first = samples[0]
            samples.sort()
            print(f"{label}: p50 {statistics.median(samples):.1f} ms, p95 {samples[int(len(samples) * 0.95) - 1]:.1f} ms, "
                  f"max {samples[-1]:.1f} ms, first {first:.1f} ms")
        print(f"({batches} batches; the seed grew by {batches * 120:,} rows)")


def backfill_cost(stack, n: int, batch: int = 100) -> None:  # type: ignore[no-untyped-def]
    """The worst realistic order: a REST backfill of one (bot, symbol) arriving newest page first.
    Each page is older than everything already applied, so each one replays from the last flat
    point before it to the newest fill; the total is compared with the same rows in order."""
    sql = SEED_SQL.replace("'bench-' || n", "%s || n").replace("'bench-o-' || (n / 5)", "'bf-o-' || (n / 5)")
    sql = sql.replace("FROM generate_series(%s::bigint, %s::bigint) n) a", "FROM generate_series(%s::bigint, %s::bigint) n) a WHERE pair = 0")
    with psycopg.connect(stack.db.dsn("listener"), prepare_threshold=None, autocommit=True) as conn:
        span = n * 60  # pair 0 is every 60th row of the generator
        results = {}
        for label, prefix, order in (("in order", "bf-in-", 1), ("newest page first", "bf-rev-", -1)):
            pages = list(range(1, span + 1, batch * 60))
            if order < 0:
                pages.reverse()
            t0 = time.perf_counter()
            for start in pages:
                conn.execute(sql, (prefix, start, min(span, start + batch * 60 - 1)))
                conn.execute("SELECT trading.pnl_refresh()")
            results[label] = time.perf_counter() - t0
            with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as owner:
                owner.execute("DELETE FROM trading.fills WHERE exec_id LIKE %s", (prefix + "%",))
        print(f"{n:,} fills of one (bot, symbol) in pages of {batch}: in order {results['in order']:.1f} s, "
              f"newest page first {results['newest page first']:.1f} s (a refresh after each page included)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--backfill", type=int, default=0, help="only time a newest-first backfill of this many fills")
    ap.add_argument("--insert-cost", action="store_true", help="also time 120-row inserts after the seed")
    args = ap.parse_args()
    stack = start_test_stack()
    if args.backfill:
        backfill_cost(stack, args.backfill)
        return 0
    if not args.skip_seed:
        seed(stack.db.dsn("listener"), args.fills)
    asyncio.run(measure(stack, args.iterations))
    if args.insert_cost:
        listener_batch_cost(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
