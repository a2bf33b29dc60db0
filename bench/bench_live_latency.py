"""Live decision latency and bot memory: closed-candle push at the venue -> the bot's order accepted.

A bot process (`python -m strategies.run alternate`: one market order on every candle, a 1000-candle
history and an EMA(200), so its warm-up is a real one) trades against the simulated venue on its
stepped clock through the real listener, PostgreSQL through PgBouncer and Redis. This script listens
to the venue's public `kline.5.BTCUSDT` itself and takes, for every confirmed candle, the wall time
its push arrived here; the venue stamps each execution's `execTime` (wall ms) when it accepts and
fills the market order, and `venueTimeMs` (the hold at that candle's close) says which candle it
answers. Latency = execTime - push arrival: kline push -> listener -> Redis stream -> bot (REST
account read, decision, state saved in PostgreSQL) -> order at the venue. Same machine, 1 ms.

Also: the bot's RSS after its warm-up and at the end.

    ALPHA_TEST_PORT_BASE=31000 .venv/bin/python bench/bench_live_latency.py [--decisions 500] [--speed 6000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.bybit_sim.handle import VenueAdmin, VenueProcess  # noqa: E402
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env  # noqa: E402
from tests.support.live_bot import BotProcess, count_started, wait_for  # noqa: E402
from shared.redis_client import redis_for  # noqa: E402
from tests.support.stack import TestStack, start_test_stack  # noqa: E402

BOT = "momentum_001"
FIVE_MIN_MS = 300_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def watch_pushes(url: str, arrivals: dict[int, int], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"op": "subscribe", "args": ["kline.5.BTCUSDT"]})
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time_ns() // 1_000_000
            frame = json.loads(msg.data)
            for k in frame.get("data") or []:
                if isinstance(k, dict) and k.get("confirm"):
                    arrivals.setdefault(int(k["start"]), now)


async def clean(stack: TestStack) -> None:
    """A fresh bot: no state, no events or feeds left by an earlier run on this stack."""
    async with await psycopg.AsyncConnection.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        await conn.execute("DELETE FROM trading.strategy_state WHERE bot_id = %s", (BOT,))
    r = redis_for(stack.redis, 0)
    await r.flushall()
    await r.aclose()


async def run(args: argparse.Namespace) -> None:
    stack = start_test_stack()
    await clean(stack)
    _, key, secret = KEYS[BOT]
    stepped = ["--stepped", "--step-quiet-ms", str(args.quiet_ms), "--step-max-ms", "2000"]
    with VenueProcess([(key, secret, "1000000")], speed=args.speed, extra_args=stepped) as venue:
        env = listener_env(stack, venue, [BOT], LOG_LEVEL="WARNING")
        listener = ListenerProcess(env).start()
        bot_env = {**env, "LOG_LEVEL": "WARNING", "STRATEGY_READ_BLOCK_MS": "100"}
        bot = BotProcess("alternate", [f"bot_id={BOT}", "symbols=BTCUSDT", "qty=0.001"], bot_env)
        arrivals: dict[int, int] = {}
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_pushes(venue.ws_public_url, arrivals, stop))
        try:
            await listener.wait_healthy(stack, [BOT])
            started = time.monotonic()
            bot.start()
            await wait_for(lambda: count_started(stack, BOT), 60, f"the bot to start\n{bot.log_tail()}")
            warm_s = time.monotonic() - started
            assert bot.proc is not None
            await asyncio.sleep(1.0)  # the first candles handled: everything a decision touches is loaded
            rss_warm = rss_mb(bot.proc.pid)
            async with VenueAdmin(venue.admin_url) as admin:
                async def enough() -> bool:
                    assert bot.running(), bot.log_tail()
                    return len(await admin.executions(key)) >= args.decisions + 12
                await wait_for(enough, args.decisions, "enough decisions", every_s=1.0)
                executions = await admin.executions(key, venue_time=True)
            rss_end = rss_mb(bot.proc.pid)
        finally:
            stop.set()
            await asyncio.gather(watcher, return_exceptions=True)
            bot.close()
            listener.close()
    lat = []
    for e in executions:
        candle_start = int(e["venueTimeMs"]) - FIVE_MIN_MS  # the candle whose close the order answers
        if e["orderLinkId"].startswith(BOT) and candle_start in arrivals:
            lat.append(int(e["execTime"]) - arrivals[candle_start])
    lat = lat[2:]  # the first candles after the start (connections warming up)
    print(f"decisions measured: {len(lat)} (speed {args.speed}x, hold quiet {args.quiet_ms} ms)")
    print(f"push -> order accepted: p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms")
    print(f"bot start to ready (imports, reconciliation, REST warm-up of 1000 candles): {warm_s:.1f} s")
    print(f"bot RSS: {rss_warm:.1f} MB after warm-up, {rss_end:.1f} MB at the end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=500)
    ap.add_argument("--speed", type=float, default=6000)
    ap.add_argument("--quiet-ms", type=int, default=80)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
