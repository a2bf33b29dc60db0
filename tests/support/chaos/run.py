"""The chaos run: the whole platform on loopback (test stack, venue, listener, trade_sync serving), a
stream of fills from three accounts, random faults from a seeded schedule, then the proofs.

`bench/chaos_run.py` is the command line; `tests/e2e/test_chaos_short.py` runs the short variant.
"""
from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from services.websocket_listener import health
from shared.bots import bot_spec
from tests.integration.listener.conftest import KEYS, PRODUCTION_TIMING, listener_env
from tests.integration.listener.helpers import normalise_redis_positions, redis_positions, venue_positions
from tests.support.chaos.checks import (
    FeedCheck, LedgerCheck, check_feed, check_ledger, pnl_differences, stored_ids, stored_rows,
)
from tests.support.chaos.processes import ChaosProxy, Supervised, listener_argv, trade_sync_argv
from tests.support.chaos.recorders import ChannelRecorder, FeedRecorder, read_whole_feed
from tests.support.chaos.schedule import KINDS, QUIET_TAIL_S, PlannedFault, draw_schedule
from tests.support.stack import TestStack, start_test_stack
from tests.support.trade_sync_harness import base_env

BOTS = list(KEYS)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
POSITIONS_WITHIN_S = 5.0
INGEST_MARKER = b"ingest_batch"  # the listener's fills write (trading.ingest_batch)


@dataclass(frozen=True)
class ChaosParams:
    seed: int = 1
    fills: int = 50_000
    minutes: float = 10.0
    faults: int = 100
    rate: float | None = None  # fills/s over the three accounts; default fills / (minutes x 60)
    converge_timeout_s: float = 240.0
    trade_sync_interval_s: int = 30
    quiet_tail_s: float = QUIET_TAIL_S  # no fault in the last seconds of the stream
    work_dir: Path | None = None  # logs; a temporary folder by default (kept, printed)

    @property
    def rate_per_s(self) -> float:
        return self.rate if self.rate else self.fills / (self.minutes * 60)

    @property
    def duration_s(self) -> float:
        return self.fills / self.rate_per_s


@dataclass
class InjectedFault:
    planned: PlannedFault
    started_s: float = 0.0  # after the stream started
    ended_s: float = 0.0  # when its effect ended (timed fault over, part back up, process restarted)
    effective: bool = True
    note: str = ""


@dataclass
class ChaosReport:
    params: ChaosParams
    schedule: list[PlannedFault]
    injected: list[InjectedFault] = field(default_factory=list)
    work_dir: Path = Path(".")
    generated: int = 0
    stream_s: float = 0.0
    ledger: LedgerCheck = field(default_factory=LedgerCheck)
    feed: FeedCheck = field(default_factory=lambda: FeedCheck("fills:{bot_id}"))
    feed_xrange: FeedCheck = field(default_factory=lambda: FeedCheck("fills:{bot_id} (XRANGE)"))
    channel: FeedCheck = field(default_factory=lambda: FeedCheck("fills_channel"))
    misfiled_feed_entries: int = 0
    positions_converged_s: float | None = None
    fills_converged_s: float | None = None
    announced_converged_s: float | None = None
    position_diff: str = ""
    positions_final_diff: str = ""  # read again once everything else was checked: must still be equal
    channel_misses_at_redis_restarts: int = 0
    starts: tuple[int, int] = (0, 0)  # listener, trade_sync processes started
    silence_recoveries: list[tuple[str, str, float | None]] = field(default_factory=list)
    pnl_diffs: list[str] = field(default_factory=list)
    pnl_days: int = 0
    pnl_trips: int = 0
    listener_unexpected_exits: list[int] = field(default_factory=list)
    trade_sync_unexpected_exits: list[int] = field(default_factory=list)
    listener_exit_code: int | None = None
    listener_counters: dict[str, str] = field(default_factory=dict)
    proxy_dropped: int = 0
    recorder_reconnects: tuple[int, int] = (0, 0)
    total_s: float = 0.0

    def failures(self) -> list[str]:
        out = []
        if self.ledger.lost:
            out.append(f"{len(self.ledger.lost)} fills lost (first: {self.ledger.lost[:5]})")
        if self.ledger.duplicated:
            out.append(f"{len(self.ledger.duplicated)} fills duplicated (first: {self.ledger.duplicated[:5]})")
        if self.ledger.unknown:
            out.append(f"{len(self.ledger.unknown)} stored fills unknown to the venue (first: {self.ledger.unknown[:5]})")
        if self.ledger.field_diffs:
            out.append(f"{len(self.ledger.field_diffs)} field differences (first: {self.ledger.field_diffs[:5]})")
        if self.feed.missing:
            out.append(f"{len(self.feed.missing)} fills never announced on fills:{{bot_id}} "
                       f"(first: {self.feed.missing[:5]})")
        if self.feed.wrong_bot or self.misfiled_feed_entries:
            out.append(f"fill feeds carry {self.feed.wrong_bot} entries of fills not the bot's own, "
                       f"{self.misfiled_feed_entries} naming another bot")
        if self.positions_converged_s is None or self.positions_converged_s > POSITIONS_WITHIN_S:
            out.append(f"Redis positions equal to the venue's only after {self.positions_converged_s} s "
                       f"(limit {POSITIONS_WITHIN_S} s): {self.position_diff}")
        if self.positions_final_diff:
            out.append(f"Redis positions differ from the venue's at the end: {self.positions_final_diff}")
        if self.pnl_diffs:
            out.append(f"{len(self.pnl_diffs)} PnL aggregate differences (first: {self.pnl_diffs[:3]})")
        if self.generated < self.params.fills:
            out.append(f"the venue generated {self.generated} fills, fewer than {self.params.fills}")
        if len(self.injected) < self.params.faults:
            out.append(f"{len(self.injected)} faults injected, fewer than {self.params.faults}")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()


class Platform:
    """Everything the run starts, and how it stops it again."""

    def __init__(self, stack: TestStack, work: Path, params: ChaosParams) -> None:
        self.stack = stack
        self.work = work
        self.params = params
        accounts = [(key, secret, "100000000") for _, key, secret in KEYS.values()]
        limits = ["--order-rate-limit", "100000", "--query-rate-limit", "50", "--ip-rate-limit", "100000"]
        self.venue = VenueProcess(accounts, speed=1.0, seed=params.seed, extra_args=limits)
        self.proxy = ChaosProxy(stack.db.pgbouncer_host, stack.db.pgbouncer_port)
        self.listener: Supervised | None = None
        self.trade_sync: Supervised | None = None
        self.part_locks = {p: asyncio.Lock() for p in ("postgres", "pgbouncer", "redis")}

    async def start(self) -> None:
        await asyncio.to_thread(self.venue.start)
        await self.proxy.__aenter__()
        env = listener_env(self.stack, self.venue, BOTS, **PRODUCTION_TIMING,
                           PGBOUNCER_PORT=str(self.proxy.port),
                           LISTENER_FILL_FEED_MAXLEN=str(max(20_000, self.params.fills * 2)),
                           LISTENER_HEARTBEAT_EVERY_S="1", LISTENER_HEALTH_MAX_AGE_S="60")
        self.listener = Supervised("listener", listener_argv(), env, self.work / "listener.log")
        self.listener.start()
        await self.wait_healthy(90.0)
        ts_env = base_env(self.stack.env, self.venue, [], TRADE_SYNC_INTERVAL_S=str(self.params.trade_sync_interval_s),
                          TRADE_SYNC_WINDOW_HOURS="1", TRADE_SYNC_IP_LIMIT_PER_5S="0", LOG_LEVEL="INFO")
        for prefix, key, secret in KEYS.values():
            ts_env[f"{prefix}_BYBIT_API_KEY"], ts_env[f"{prefix}_BYBIT_API_SECRET"] = key, secret
        self.trade_sync = Supervised("trade_sync", trade_sync_argv(), ts_env, self.work / "trade_sync.log")
        self.trade_sync.start()

    async def wait_healthy(self, timeout_s: float) -> None:
        r = aioredis.Redis(port=self.stack.redis.redis_port, decode_responses=True,
                           password=self.stack.redis.redis_password.get_secret_value())
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    problems = await health.check(r, health.connection_names(BOTS), 10.0, datetime.now(UTC))
                except Exception as exc:  # Redis may be restarting
                    problems = [repr(exc)]
                if not problems:
                    return
                if time.monotonic() > deadline:
                    assert self.listener is not None
                    raise RuntimeError(f"listener not healthy: {problems}\n{self.listener.log_tail()}")
                await asyncio.sleep(0.2)
        finally:
            await r.aclose()

    async def restart_part(self, part: str, down_s: float) -> None:
        async with self.part_locks[part]:
            await asyncio.to_thread(self.stack.stop, part)
            await asyncio.sleep(down_s)
            await asyncio.to_thread(self.stack.start, part)

    async def close(self) -> tuple[int | None, int | None]:
        codes = (None, None)
        try:
            ts = await self.trade_sync.stop() if self.trade_sync else None
            ls = await self.listener.stop() if self.listener else None
            codes = (ls, ts)
        finally:
            await self.proxy.__aexit__(None, None, None)
            await asyncio.to_thread(self.venue.close)
            for part in ("postgres", "pgbouncer", "redis"):
                await asyncio.to_thread(self.stack.start, part)
        return codes


def reset_state(stack: TestStack) -> None:
    """Empty trading tables and Redis: the venue starts empty, so everything stored comes from this run."""
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                                             "WHERE schemaname = 'trading' AND tablename <> 'schema_migrations'")]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    import redis
    r = redis.Redis(port=stack.redis.redis_port, password=stack.redis.redis_password.get_secret_value())
    r.flushall()
    r.close()


async def inject(platform: Platform, admin: VenueAdmin, fault: PlannedFault, t0: float) -> InjectedFault:
    rec = InjectedFault(fault, started_s=time.monotonic() - t0)
    key = KEYS[fault.target][1] if fault.target else None
    k = fault.kind
    assert platform.listener is not None and platform.trade_sync is not None
    if k == "kill_listener":
        rec.effective = await platform.listener.kill9()
        rec.note = "" if rec.effective else "listener was already down (restarting)"
        await asyncio.sleep(platform.listener.restart_delay_s + 0.3)
    elif k == "kill_trade_sync":
        rec.effective = await platform.trade_sync.kill9()
        rec.note = "" if rec.effective else "trade_sync was already down (restarting)"
        await asyncio.sleep(platform.trade_sync.restart_delay_s + 0.3)
    elif k.startswith("restart_"):
        await platform.restart_part(k.removeprefix("restart_"), fault.seconds)
    elif k in ("ws_reset", "ws_close"):
        act = admin.reset_connections if k == "ws_reset" else admin.close_connections
        affected = await act(key, fault.channel)
        rec.effective, rec.note = affected > 0, f"{affected} connections"
    elif k == "ws_silence":
        await admin.silence(fault.seconds, key)
        await asyncio.sleep(fault.seconds)
    elif k == "duplicate":
        await admin.duplicate_pushes(fault.seconds, key)
        await asyncio.sleep(fault.seconds)
    elif k == "reorder":
        await admin.reorder_pushes(fault.seconds, key)
        await asyncio.sleep(fault.seconds)
    elif k == "rate_limit":
        await admin.rate_limit(fault.seconds, key)
        await asyncio.sleep(fault.seconds)
    elif k == "http_5xx":
        await admin.http_5xx(fault.seconds, fault.status, key)
        await asyncio.sleep(fault.seconds)
    elif k == "drop_pg_answer":
        before = platform.proxy.dropped
        platform.proxy.arm(INGEST_MARKER)
        deadline = time.monotonic() + 30
        while platform.proxy.dropped == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        rec.effective = platform.proxy.dropped > before
        rec.note = "answer dropped" if rec.effective else "no fills batch within 30 s"
    else:
        raise ValueError(f"unknown fault kind {k}")
    rec.ended_s = time.monotonic() - t0
    return rec


async def run_schedule(platform: Platform, admin: VenueAdmin, schedule: list[PlannedFault], t0: float,
                       log: Any) -> list[InjectedFault]:
    async def one(f: PlannedFault) -> InjectedFault:
        await asyncio.sleep(max(0.0, f.at_s - (time.monotonic() - t0)))
        try:
            rec = await inject(platform, admin, f, t0)
        except Exception as exc:  # a failed injection is reported, the run goes on
            rec = InjectedFault(f, time.monotonic() - t0, time.monotonic() - t0, False, f"failed: {exc!r}"[:200])
        log(f"  fault {rec.planned.describe()}  -> done at t+{rec.ended_s:.1f}s {rec.note}")
        return rec
    return list(await asyncio.gather(*(one(f) for f in schedule)))


async def positions_diff(platform: Platform) -> str:
    """'' when every bot's Redis positions equal the venue's (size, side, average price)."""
    for bot_id, (_p, key, secret) in KEYS.items():
        try:
            mine = normalise_redis_positions(await redis_positions(platform.stack, bot_id, bot_spec(bot_id).redis_db))
            theirs = await venue_positions(platform.venue.rest_url, key, secret, SYMBOLS)
        except Exception as exc:
            return f"{bot_id}: {exc!r}"[:300]
        if mine != theirs:
            return f"{bot_id}: redis {mine} venue {theirs}"
    return ""


async def converge(platform: Platform, feed: FeedRecorder, report: ChaosReport, expected: dict[str, set[str]],
                   quiet_from: float, timeout_s: float) -> None:
    """Poll until the positions, the stored fills and the announcements all equal the venue's; record how long
    after `quiet_from` (the instant after which no fault was active and the stream had ended). `expected` are the
    fills the generations made (known at once, so the first poll is not delayed by reading the venue's list)."""
    all_ids = set().union(*expected.values())
    deadline = quiet_from + timeout_s
    while True:
        now = time.monotonic()
        if report.positions_converged_s is None:
            diff = await positions_diff(platform)
            if diff:
                report.position_diff = diff  # the last difference seen, for the failure message
            else:
                report.positions_converged_s = time.monotonic() - quiet_from
        if report.fills_converged_s is None:
            ids = await asyncio.to_thread(stored_ids, platform.stack)
            if all_ids <= set(ids):
                report.fills_converged_s = time.monotonic() - quiet_from
        if report.announced_converged_s is None and all(expected[b] <= set(feed.seen[b]) for b in BOTS):
            report.announced_converged_s = time.monotonic() - quiet_from
        if None not in (report.positions_converged_s, report.fills_converged_s, report.announced_converged_s):
            return
        if now > deadline:
            return
        await asyncio.sleep(0.25)


def silence_recoveries(report: ChaosReport, log_path: Path, t0_wall_ms: float) -> list[tuple[str, str, float | None]]:
    """For each silent period of a private connection (overlapping silences merged): (fault numbers,
    connection, seconds from the end of the period until the listener had that connection up again; None if
    never). An authenticated connection cannot come up inside a silence (the auth answer is not sent), so the
    first `connection_up` after the period's start is the recovery."""
    ups: list[tuple[float, str]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"connection_up"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
            ups.append((at, entry.get("connection", "")))
    out: list[tuple[str, str, float | None]] = []
    for bot in BOTS:
        conn = f"ws:{bot}"
        periods: list[list[Any]] = []  # [start_ms, end_ms, fault numbers]
        for r in sorted(report.injected, key=lambda r: r.started_s):
            if r.planned.kind != "ws_silence" or r.planned.target not in (None, bot):
                continue
            start = t0_wall_ms + r.started_s * 1000
            end = start + r.planned.seconds * 1000
            if periods and start <= periods[-1][1]:
                periods[-1][1] = max(periods[-1][1], end)
                periods[-1][2].append(r.planned.n)
            else:
                periods.append([start, end, [r.planned.n]])
        for start, end, numbers in periods:
            first = min((at for at, c in ups if c == conn and at > start + 1000), default=None)
            out.append(("+".join(f"#{n}" for n in numbers), conn, None if first is None else (first - end) / 1000))
    return out


def channel_misses_near_redis_restarts(report: ChaosReport, first_ms: dict[str, int], t0_wall_ms: float,
                                       after_s: float = 5.0) -> int:
    """How many of the fills missing on fills_channel were announced (per their feed entry, Redis's clock)
    while Redis was being restarted or within `after_s` after it was back."""
    windows = [(t0_wall_ms + r.started_s * 1000, t0_wall_ms + (r.ended_s + after_s) * 1000)
               for r in report.injected if r.planned.kind == "restart_redis"]
    return sum(1 for e in report.channel.missing
               if e in first_ms and any(a <= first_ms[e] <= b for a, b in windows))


async def run_chaos(params: ChaosParams, stack: TestStack | None = None, log: Any = print) -> ChaosReport:
    started = time.monotonic()
    schedule = draw_schedule(params.seed, params.faults, params.duration_s, BOTS, quiet_tail_s=params.quiet_tail_s)
    work = params.work_dir or Path(tempfile.mkdtemp(prefix="chaos_"))
    work.mkdir(parents=True, exist_ok=True)
    report = ChaosReport(params, schedule, work_dir=work)
    per_bot = -(-params.fills // len(BOTS))
    log(f"chaos run: seed {params.seed}, {per_bot * len(BOTS)} fills from {len(BOTS)} accounts at "
        f"{params.rate_per_s:.1f}/s over {params.duration_s / 60:.2f} min, {len(schedule)} faults; logs in {work}")
    log("schedule (t = seconds after the stream starts):")
    for f in schedule:
        log(f"  {f.describe()}")
    stack = stack or await asyncio.to_thread(start_test_stack)
    await asyncio.to_thread(reset_state, stack)
    platform = Platform(stack, work, params)
    feed = FeedRecorder(stack.redis, BOTS)
    channel = ChannelRecorder(stack.redis)
    try:
        feed.start()
        channel.start()
        await platform.start()
        log(f"platform up in {time.monotonic() - started:.1f}s (venue {platform.venue.base_url}, proxy :"
            f"{platform.proxy.port} -> PgBouncer :{stack.db.pgbouncer_port})")
        async with VenueAdmin(platform.venue.admin_url) as admin:
            t0, t0_wall_ms = time.monotonic(), time.time() * 1000
            gens = [await admin.generate(KEYS[b][1], count=per_bot, rate_per_s=params.rate_per_s / len(BOTS),
                                         symbols=SYMBOLS, prefix=f"chaos{i}") for i, b in enumerate(BOTS)]
            faults_task = asyncio.create_task(run_schedule(platform, admin, schedule, t0, log))
            statuses = [await admin.wait_generation(g, timeout_s=params.duration_s * 3 + 120) for g in gens]
            stream_end = time.monotonic()
            report.stream_s = stream_end - t0
            report.generated = sum(s["done"] for s in statuses if s["state"] == "done")
            expected = {b: set(s.get("exec_ids", [])) for b, s in zip(BOTS, statuses)}
            log(f"stream done: {report.generated} fills in {report.stream_s:.1f}s; waiting for the faults to end")
            report.injected = await faults_task
            await admin.clear_faults()
            quiet_from = max(stream_end, t0 + max((r.ended_s for r in report.injected), default=0.0))
            log(f"last fault ended at t+{quiet_from - t0:.1f}s; converging")
            await converge(platform, feed, report, expected, quiet_from, params.converge_timeout_s)
            truth = {b: await admin.executions(KEYS[b][1]) for b in BOTS}
            await asyncio.sleep(1.5)  # announcements in flight reach the recorders
            report.positions_final_diff = await positions_diff(platform)
            report.ledger = check_ledger(truth, await asyncio.to_thread(stored_rows, stack))
            report.feed = check_feed("fills:{bot_id}", truth, feed.seen)
            report.feed_xrange = check_feed("fills:{bot_id} (XRANGE)", truth,
                                            {b: await read_whole_feed(stack.redis, b) for b in BOTS})
            report.channel = check_feed("fills_channel", truth, channel.seen)
            report.misfiled_feed_entries = len(feed.misfiled)
            report.silence_recoveries = silence_recoveries(report, work / "listener.log", t0_wall_ms)
            report.channel_misses_at_redis_restarts = channel_misses_near_redis_restarts(report, feed.first_ms,
                                                                                         t0_wall_ms)
            report.pnl_diffs, report.pnl_days, report.pnl_trips = await asyncio.to_thread(pnl_differences, stack, truth)
            r = aioredis.Redis(port=stack.redis.redis_port, decode_responses=True,
                               password=stack.redis.redis_password.get_secret_value())
            report.listener_counters = await r.hgetall("listener:counters")
            await r.aclose()
    finally:
        await feed.stop()
        await channel.stop()
        report.recorder_reconnects = (feed.reconnects, channel.reconnects)
        if platform.listener:
            report.listener_unexpected_exits = list(platform.listener.unexpected_exits)
        if platform.trade_sync:
            report.trade_sync_unexpected_exits = list(platform.trade_sync.unexpected_exits)
        report.proxy_dropped = platform.proxy.dropped
        report.starts = (platform.listener.starts if platform.listener else 0,
                         platform.trade_sync.starts if platform.trade_sync else 0)
        report.listener_exit_code, _ = await platform.close()
        report.total_s = time.monotonic() - started
    return report


def figures(report: ChaosReport) -> str:
    """The printed result: faults by kind, fills, lost, duplicated, announced, time to converge."""
    p = report.params
    by_kind = Counter(r.planned.kind for r in report.injected)
    effective = Counter(r.planned.kind for r in report.injected if r.effective)
    lines = [f"chaos figures (seed {p.seed}, {p.fills} fills asked, {p.duration_s / 60:.2f} min, {p.faults} faults asked)",
             f"faults injected: {len(report.injected)} ({sum(effective.values())} took effect)"]
    lines += [f"  {k:<18} {by_kind[k]:>3} ({effective[k]} effective)  {KINDS[k]}" for k in KINDS if by_kind[k]]
    for r in report.injected:
        if not r.effective:
            lines.append(f"  not effective: #{r.planned.n} {r.planned.kind}: {r.note}")
    led = report.ledger
    lines += [
        f"fills: venue {led.venue}, generated {report.generated} in {report.stream_s:.1f}s, stored {led.stored}",
        f"lost {len(led.lost)}, duplicated {len(led.duplicated)}, stored but unknown to the venue {len(led.unknown)}, "
        f"field differences {len(led.field_diffs)} (every column of every fill compared)",
    ]
    for fc in (report.feed, report.feed_xrange, report.channel):
        lines.append(f"announced on {fc.name}: {fc.announced}/{fc.fills} ({fc.coverage:.4%}), "
                     f"{fc.entries} announcements ({fc.repeats} repeats), missing {len(fc.missing)}")
    lines.append(f"  fills_channel is pub/sub: a subscriber misses what is published while it is disconnected; of the "
                 f"{len(report.channel.missing)} missed, {report.channel_misses_at_redis_restarts} were announced "
                 f"during a Redis restart or within 5 s after it (recorder reconnects: feed "
                 f"{report.recorder_reconnects[0]}, channel {report.recorder_reconnects[1]})")

    def s(v: float | None) -> str:
        return "never" if v is None else f"{v:.2f}s"
    rec = [x for _n, _c, x in report.silence_recoveries]
    if rec:
        worst = max(report.silence_recoveries, key=lambda t: -1e9 if t[2] is None else t[2])
        lines.append(f"after each silent period (60 s silences, overlapping ones merged) the listener had the private "
                     f"connection up again {min(x for x in rec if x is not None):+.1f}..{max(x for x in rec if x is not None):+.1f}s "
                     f"after it ended ({len(rec)} periods; slowest {worst[0]} on {worst[1]})"
                     if None not in rec else f"after a silence a private connection never came back: "
                     f"{[t for t in report.silence_recoveries if t[2] is None]}")
    lines += [
        f"time to converge after the last fault/end of stream: positions {s(report.positions_converged_s)} "
        f"(limit {POSITIONS_WITHIN_S:.0f}s), all fills stored {s(report.fills_converged_s)}, all announced on the "
        f"feeds {s(report.announced_converged_s)}",
        f"PnL aggregates vs replay of the venue's executions: {report.pnl_days} (bot, symbol, day) rows and "
        f"{report.pnl_trips} round trips compared, {len(report.pnl_diffs)} differences",
        f"processes started: listener {report.starts[0]}, trade_sync {report.starts[1]}; positions at the very end: "
        f"{'equal' if not report.positions_final_diff else report.positions_final_diff}",
        f"listener: unexpected exits {report.listener_unexpected_exits or 'none'}, exit code at the end "
        f"{report.listener_exit_code}; trade_sync unexpected exits {report.trade_sync_unexpected_exits or 'none'}; "
        f"PostgreSQL answers dropped {report.proxy_dropped}",
        "listener counters (its last process only): " + ", ".join(f"{k}={report.listener_counters[k]}" for k in
                                          ("fills_written", "duplicates", "reconnects", "catchups", "catchup_rows",
                                           "db_retries", "dead_lettered", "position_mismatches")
                                          if k in report.listener_counters),
        f"run took {report.total_s:.0f}s; logs in {report.work_dir}",
    ]
    fails = report.failures()
    lines.append("RESULT: " + ("all checks passed" if not fails else "FAILED\n  " + "\n  ".join(fails)))
    return "\n".join(lines)


def report_json(report: ChaosReport) -> str:
    return json.dumps({
        "seed": report.params.seed, "faults": Counter(r.planned.kind for r in report.injected),
        "fills": report.ledger.venue, "stored": report.ledger.stored, "lost": len(report.ledger.lost),
        "duplicated": len(report.ledger.duplicated), "field_differences": len(report.ledger.field_diffs),
        "announced_feed": report.feed.announced, "announced_channel": report.channel.announced,
        "positions_converged_s": report.positions_converged_s, "fills_converged_s": report.fills_converged_s,
        "pnl_differences": len(report.pnl_diffs), "ok": report.ok,
    }, default=str)

