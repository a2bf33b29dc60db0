"""`python -m strategies.shortseller` as the container runs it, against the simulated venue (held
stepped clock), the real listener and the test stack: it starts, registers in trading.bots, beats,
decides on each candle, and stops cleanly on SIGTERM. `python -m strategies.health` passes while it
decides and fails once candles stop coming, though the process (and its DB heartbeat) lives on.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.redis_client import redis_for
from strategies.runtime.live.liveness import Liveness, liveness_key, now_ms
from tests.integration.listener.conftest import KEYS, REPO, ListenerProcess, listener_env
from tests.support.live_bot import FIVE_MIN_MS, BotProcess, count_started, done, hold, step_to_next, wait_for
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

BOT_ID = "shortseller_001"
# held until the test steps; one clock for fills and candles
HELD = ["--stepped", "--step-quiet-ms", "600000", "--step-max-ms", "600000", "--stamp-clock", "venue"]
CONFIG = {"SHORTSELLER_SYMBOLS": "BTCUSDT", "SHORTSELLER_EMA_FAST_LEN": "3", "SHORTSELLER_EMA_SLOW_LEN": "8"}


class ShortSellerProcess(BotProcess):
    def __init__(self, env: dict[str, str]) -> None:
        super().__init__("shortseller", [], env)
        self.args = [sys.executable, "-m", "strategies.shortseller"]


def bot_env(stack: TestStack, venue: VenueProcess) -> dict[str, str]:
    env = listener_env(stack, venue, [BOT_ID])
    env.update({"STRATEGY_READ_BLOCK_MS": "50", "STRATEGY_HEARTBEAT_INTERVAL_S": "1",
                "STRATEGY_LIVENESS_INTERVAL_S": "0.5", **CONFIG})
    return env


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strategies.health", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def bots_row(stack: TestStack) -> tuple[str, str, datetime] | None:
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        return conn.execute("SELECT bot_name, strategy_name, last_heartbeat FROM trading.bots WHERE bot_id = %s",
                            (BOT_ID,)).fetchone()


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(KEYS[BOT_ID][1], KEYS[BOT_ID][2], "1000000")], speed=3000, extra_args=HELD) as v:
        yield v


async def test_health_cli_judges_the_record_in_redis(clean_state: TestStack) -> None:
    env = {**clean_state.env, "PATH": "/usr/bin:/bin"}
    res = health(env, BOT_ID)
    assert res.returncode == 1 and f"no liveness record {liveness_key(BOT_ID)}" in res.stderr, res.stderr
    assert health(env, "nobody_001").returncode == 2
    r = redis_for(clean_state.redis, 0)
    try:
        t = now_ms()
        fresh = Liveness(boot_ms=t - 60_000, started_ms=t - 50_000, decided_ms=t - 1_000, bars=12,
                         interval_ms=FIVE_MIN_MS, written_ms=t)
        await r.hset(liveness_key(BOT_ID), mapping=fresh.fields())  # type: ignore[arg-type]
        res = health(env, BOT_ID)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        stale = Liveness(boot_ms=t - 3_600_000, started_ms=t - 3_500_000, decided_ms=t - 700_000, bars=12,
                         interval_ms=FIVE_MIN_MS, written_ms=t)  # 700 s > 2 x 300 s + 60 s
        await r.hset(liveness_key(BOT_ID), mapping=stale.fields())  # type: ignore[arg-type]
        res = health(env, BOT_ID)
        assert res.returncode == 1 and "unhealthy: no candle decided for 70" in res.stderr and "(limit 660 s" in res.stderr, res.stderr
        assert health(env, BOT_ID, "--slack-s", "120").returncode == 0  # 720 s
        await r.hset(liveness_key(BOT_ID), "bars", "many")
        res = health(env, BOT_ID)
        assert res.returncode == 1 and "bad liveness record" in res.stderr, res.stderr
    finally:
        await r.aclose()


async def test_the_process_starts_registers_beats_decides_and_stops_on_sigterm(
        clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    env = bot_env(stack, venue)
    listener = ListenerProcess(listener_env(stack, venue, [BOT_ID])).start()
    bot = ShortSellerProcess(env)
    try:
        await listener.wait_healthy(stack, [BOT_ID])
        bot.start()
        await wait_for(lambda: count_started(stack, BOT_ID), 90, f"the bot to start\n{bot.log_tail()}")
        row = bots_row(stack)
        assert row is not None and row[0] == "ShortSeller", row
        first_beat = row[2]

        async def beat_moved() -> bool:
            r = bots_row(stack)
            return r is not None and r[2] > first_beat

        await wait_for(beat_moved, 20, "a second heartbeat")
        async with VenueAdmin(venue.admin_url) as admin:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            for _ in range(3):
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT_ID, at - FIVE_MIN_MS), 30,
                               f"the bot to handle {at - FIVE_MIN_MS}\n{bot.log_tail()}", every_s=0.02)
            decided = await wait_for(lambda: decided_at_least(stack, 3), 10, "the liveness record to count 3")
            res = health(env, BOT_ID, "--limit-s", "8")
            assert res.returncode == 0, res.stderr

            # no more candles (the venue holds): the process lives and beats, but decides nothing
            async def unhealthy() -> str | None:
                res = health(env, BOT_ID, "--limit-s", "3")
                return res.stderr if res.returncode == 1 else None

            problem = await wait_for(unhealthy, 30, "the health check to fail", every_s=0.5)
            assert f"{BOT_ID} unhealthy: no candle decided for" in problem and "3 handled" in problem, problem
            assert bot.running(), bot.log_tail()
            row = bots_row(stack)
            assert row is not None and row[2].timestamp() * 1000 > decided.decided_ms, (row, decided)

            at = await step_to_next(admin, at)  # candles again: healthy again
            await wait_for(lambda: done(stack, BOT_ID, at - FIVE_MIN_MS), 30, f"the 4th candle\n{bot.log_tail()}")
            await wait_for(lambda: decided_at_least(stack, 4), 10, "the liveness record to count 4")
            res = health(env, BOT_ID, "--limit-s", "8")
            assert res.returncode == 0, res.stderr

        assert bot.terminate() == 0, bot.log_tail()
        log = "\n".join(bot.log_lines())
        assert '"bot_stopped"' in log and "Traceback" not in log, bot.log_tail()
    finally:
        bot.close()
        listener.close()


async def decided_at_least(stack: TestStack, bars: int) -> Liveness | None:
    r = redis_for(stack.redis, 0)
    try:
        raw = await r.hgetall(liveness_key(BOT_ID))
    finally:
        await r.aclose()
    if not raw:
        return None
    rec = Liveness.parse(raw)
    return rec if rec.bars >= bars else None


