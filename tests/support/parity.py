"""The parity harness: a live bot process on the held venue, then the backtester over the venue's own
candles of that window from the same warm-up, and what the two are compared on.

`run_held` starts the real listener and the bot (its candles and fills through the listener, its state
in PostgreSQL, its feeds in Redis) on a venue held at every candle close until the test steps it, for
`bars` candles; it returns the warm-up the bot announced, the last candle it handled and the account's
executions. Each step waits until the bot has handled the candle and every execution of its account so
far (sent what it decided, the stops it sets on a fill included), so the live run cannot fall behind
the venue on a loaded machine; `after_step` runs right after each step, `after_settle` once the bot
settled (to kill and restart the bot there).
`venue_window` fetches the candles the backtester then runs on, checked complete.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import psycopg
from redis.asyncio import Redis

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from strategies.runtime.candles import Candles
from tests.integration.listener.conftest import ListenerProcess, listener_env
from tests.support.live_bot import (
    FIVE_MIN_MS, BotProcess, candles_from_rest, hold, read_state, started_n, state_of, step_to_next, wait_for,
)
from tests.support.stack import TestStack

SPEED = 3000  # a 5-minute candle in 0.1 s of wall time between holds
# held until the test steps; venue-clock stamps, so the bot compares fill times with candle times on one clock
HELD = ["--stepped", "--step-quiet-ms", "600000", "--step-max-ms", "600000", "--stamp-clock", "venue"]


class ShortSellerProcess(BotProcess):
    """`python -m strategies.shortseller`, as its container runs it (settings from SHORTSELLER_*)."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__("shortseller", [], env)
        self.args = [sys.executable, "-m", "strategies.shortseller"]


def bot_env(stack: TestStack, venue: VenueProcess, bots: list[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = listener_env(stack, venue, bots)
    env.update({"STRATEGY_READ_BLOCK_MS": "50", "STRATEGY_HEARTBEAT_INTERVAL_S": "5", "LOG_FORMAT": "json",
                **(extra or {})})
    return env


async def started_event(stack: TestStack, bot_id: str) -> dict[str, Any] | None:
    r = redis_for(stack.redis, 0)
    try:
        for _id, fields in await r.xrange(f"events:{bot_id}"):
            if fields.get(b"kind", fields.get("kind")) in (b"started", "started"):
                raw = fields.get(b"data", fields.get("data"))
                return json.loads(raw)
        return None
    finally:
        await r.aclose()


async def venue_candles(venue: VenueProcess, symbol: str, from_ms: int, to_ms: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    async with BybitRestClient(venue.rest_url) as rest:
        end = to_ms
        while end >= from_ms:
            got = (await rest.get("/v5/market/kline", {"category": "linear", "symbol": symbol, "interval": "5",
                                                        "end": end, "limit": 1000})).result["list"]
            got = [r for r in got if from_ms <= int(r[0]) <= to_ms]
            if not got:
                break
            rows += got
            end = min(int(r[0]) for r in got) - FIVE_MIN_MS
    return rows


@dataclass(frozen=True)
class LiveRun:
    warm_from_ms: int  # the first warm-up candle the bot fetched
    first_close_ms: int  # the first candle the bot handled live closes here
    last_start_ms: int  # the start of the last candle it handled
    executions: list[dict[str, Any]]  # the account's, with venueTimeMs
    log_tail: str  # the bot's, for failure messages
    state: dict[str, Any]  # the bot's saved state at the end, for failure messages

    @property
    def end_candle_ms(self) -> int:
        """The candle after the last one handled: its orders fill in it."""
        return self.last_start_ms + FIVE_MIN_MS


async def venue_window(venue: VenueProcess, symbol: str, run: LiveRun) -> Candles:
    """The venue's candles from the bot's first warm-up candle to the one after its last decision."""
    candles = candles_from_rest(await venue_candles(venue, symbol, run.warm_from_ms, run.end_candle_ms), symbol)
    assert int(candles.start_ms[0]) == run.warm_from_ms and int(candles.start_ms[-1]) == run.end_candle_ms
    assert len(candles) == (run.end_candle_ms - run.warm_from_ms) // FIVE_MIN_MS + 1  # no candle missing
    return candles


def before(rows: Sequence[Any], horizon_ms: int) -> list[Any]:
    return [f for f in rows if f.candle_ms < horizon_ms]


@dataclass(frozen=True)
class Watch:
    """What `settled` polls through, opened once for the run: a new connection per poll costs ~11 ms
    (against 0.2 ms for a query), CPU taken from the processes the poll waits for."""

    db: psycopg.Connection[Any]
    redis: Redis
    admin: VenueAdmin


async def settled(watch: Watch, bot_id: str, api_key: str, candle_start: int, symbol: str) -> bool:
    """The bot handled this candle and every execution of its account so far (the listener relayed it
    on `fills:{bot_id}` and the bot read it), and sent all it decided (its outbox is empty)."""
    st = read_state(watch.db, bot_id)
    if st.get(f"_bar:{symbol}:5m") != candle_start or "_outbox" in st:
        return False
    at_venue = {e["execId"] for e in await watch.admin.executions(api_key)}
    relayed = await watch.redis.xrange(f"fills:{bot_id}")
    ids = {json.loads(f["fill"])["exec_id"] for _, f in relayed}
    return at_venue <= ids and (not relayed or st.get("_fills_id") == relayed[-1][0])


Hook = Callable[[int, int, BotProcess], Awaitable[None]]


async def restart(stack: TestStack, bot: BotProcess, bot_id: str, starts: int) -> None:
    """SIGKILL the bot and start it again; back once it announced its `starts`-th start."""
    bot.kill9()
    bot.start()
    await wait_for(lambda: started_n(stack, bot_id, starts), 60, f"start {starts}\n{bot.log_tail()}")


async def run_held(stack: TestStack, venue: VenueProcess, bot: BotProcess, bot_id: str, symbol: str, api_key: str,
                   bars: int, after_step: Hook | None = None, after_settle: Hook | None = None) -> LiveRun:
    """`bars` candles on a venue started with HELD: the bot warms up at the first hold, then each step
    pushes one candle; `after_step(n, at, bot)` runs right after the n-th step (the venue holds at `at`),
    `after_settle(n, at, bot)` once the bot settled that candle."""
    listener = ListenerProcess(listener_env(stack, venue, [bot_id])).start()
    try:
        await listener.wait_healthy(stack, [bot_id])
        async with VenueAdmin(venue.admin_url) as admin, AsyncExitStack() as opened:
            db = opened.enter_context(psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True))
            r = redis_for(stack.redis, 0)
            opened.push_async_callback(r.aclose)
            watch = Watch(db, r, admin)
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            bot.start()
            started = await wait_for(lambda: started_event(stack, bot_id), 90, f"the bot to start\n{bot.log_tail()}")
            warm = started["warmup"][f"{symbol}:5m"]
            assert warm["to_ms"] == at - FIVE_MIN_MS, (warm, at)  # warmed up to the held candle
            first_close = at + FIVE_MIN_MS
            for n in range(bars):
                at = await step_to_next(admin, at)
                if after_step is not None:
                    await after_step(n, at, bot)
                await wait_for(lambda: settled(watch, bot_id, api_key, at - FIVE_MIN_MS, symbol), 30,
                               f"the bot to settle candle {at - FIVE_MIN_MS}\n{bot.log_tail()}", every_s=0.02)
                if after_settle is not None:
                    await after_settle(n, at, bot)
            assert bot.terminate() == 0, bot.log_tail()
            executions = await admin.executions(api_key, venue_time=True)
        log_tail = bot.log_tail(12000) + "".join(f"\n{ln}" for ln in bot.log_lines() if "\"error\"" in ln or "\"warning\"" in ln)
        state = state_of(stack, bot_id)
    finally:
        bot.close()
        listener.close()
    return LiveRun(warm["from_ms"], first_close, at - FIVE_MIN_MS, executions, log_tail, state)
