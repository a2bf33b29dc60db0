"""A live bot killed with SIGKILL and restarted decides and orders as one never killed, and learns
of fills that happened while it was down (from `fills:{bot_id}`).

The venue's stepped clock is held until the test steps it (a quiet period longer than the test), so
two bots on two accounts see the same candles at the same prices: bot A runs through, bot B is
killed right after a candle is pushed (anywhere in its handling of it: before its state is saved,
between the save and the orders, or after) and restarted while the clock holds.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env
from tests.support.live_bot import (
    FIVE_MIN_MS, BotProcess, count_started, done, events, hold, live_fills, started_n, state_of, step_to_next, wait_for,
)
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

A, B = "momentum_001", "lxalgo_001"
SYMBOL = "BTCUSDT"
STRATEGY = {"symbols": SYMBOL, "fast": "3", "slow": "8", "qty": "0.01", "stop_loss_pct": "0.3",
            "take_profit_pct": "0.4"}
# held until the test steps; one clock for fills and candles
HELD = ["--stepped", "--step-quiet-ms", "600000", "--step-max-ms", "600000", "--stamp-clock", "venue"]
STEPS, KILL_AT = 70, (20, 45)


def settings(bot_id: str) -> list[str]:
    return [f"{k}={v}" for k, v in {**STRATEGY, "bot_id": bot_id}.items()]


def bot_env(stack: TestStack, venue: VenueProcess, bots: list[str]) -> dict[str, str]:
    env = listener_env(stack, venue, bots)
    env.update({"STRATEGY_READ_BLOCK_MS": "50", "STRATEGY_HEARTBEAT_INTERVAL_S": "5", "LOG_FORMAT": "json"})
    return env


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    accounts = [(KEYS[b][1], KEYS[b][2], "1000000") for b in (A, B)]
    with VenueProcess(accounts, speed=3000, extra_args=HELD) as v:
        yield v


def comparable(executions: list[dict[str, Any]], bot_id: str) -> list[tuple[Any, ...]]:
    """Fills with the bot's own prefix taken off the orderLinkId (the two bots count alike)."""
    return [(f.candle_ms, f.side, f.qty, f.price, f.reason, f.link_id.removeprefix(bot_id))
            for f in live_fills(executions, bot_id)]


async def start_pair(stack: TestStack, venue: VenueProcess, bots: list[str]) -> tuple[ListenerProcess, dict[str, BotProcess]]:
    listener = ListenerProcess(listener_env(stack, venue, bots)).start()
    procs: dict[str, BotProcess] = {}
    try:
        await listener.wait_healthy(stack, bots)
        procs = {b: BotProcess("ema_cross", settings(b), bot_env(stack, venue, bots)).start() for b in bots}
        for b, p in procs.items():
            await wait_for(lambda b=b: count_started(stack, b), 60, f"{b} to start\n{p.log_tail()}")
    except BaseException:
        for p in procs.values():
            p.close()
        listener.close()
        raise
    return listener, procs


async def test_killed_and_restarted_bot_orders_as_one_never_killed(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    listener, procs = await start_pair(stack, venue, [A, B])
    try:
        async with VenueAdmin(venue.admin_url) as admin:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            kills = 0
            for n in range(STEPS):
                at = await step_to_next(admin, at)
                if n in KILL_AT:  # the candle was just pushed: B is somewhere in handling it
                    procs[B].kill9()
                    kills += 1
                    procs[B].start()
                    await wait_for(lambda: started_n(stack, B, 1 + kills), 60, f"B to restart\n{procs[B].log_tail()}")
                for bot in (A, B):
                    await wait_for(lambda bot=bot: done(stack, bot, at - FIVE_MIN_MS), 20,
                                   f"{bot} to handle {at - FIVE_MIN_MS}\n{procs[bot].log_tail()}", every_s=0.01)
            got = {b: await admin.executions(KEYS[b][1], venue_time=True) for b in (A, B)}
        b_log = "\n".join(procs[B].log_lines())
    finally:
        for p in procs.values():
            p.close()
        listener.close()

    fills_a, fills_b = comparable(got[A], A), comparable(got[B], B)
    links_a = [e["orderLinkId"].removeprefix(A) for e in got[A] if e["orderLinkId"]]
    links_b = [e["orderLinkId"].removeprefix(B) for e in got[B] if e["orderLinkId"]]
    assert len(fills_a) >= 8 and {"entry", "exit"} <= {f[4] for f in fills_a}, fills_a
    assert links_b == links_a  # the same orders, ids included, none twice
    assert fills_b == fills_a  # at the same candles and prices
    assert b_log.count('"bot_starting"') == 3


async def test_a_fill_while_the_bot_is_down_reaches_it_on_restart(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    listener, procs = await start_pair(stack, venue, [B])
    bot = procs[B]
    _, key, secret = KEYS[B]
    try:
        async with VenueAdmin(venue.admin_url) as admin, BybitRestClient(venue.rest_url, key, secret) as rest:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            position: dict[str, Any] | None = None
            for _ in range(200):  # until the bot holds a position with its stop-loss
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, B, at - FIVE_MIN_MS), 20, f"B at {at}\n{bot.log_tail()}", every_s=0.01)
                rows = (await rest.get("/v5/position/list", {"category": "linear", "symbol": SYMBOL})).result["list"]
                if rows and Decimal(rows[0]["size"]) and Decimal(rows[0]["stopLoss"]):
                    position = rows[0]
                    break
            assert position is not None, "the bot never opened a position"
            await wait_for(lambda: _knows(stack, B), 20, "B to record its position")
            bot.kill9()
            stop = Decimal(position["stopLoss"])
            beyond = stop - 50 if position["side"] == "Buy" else stop + 50
            await admin.pin_price(SYMBOL, str(beyond))  # the stop-loss fires while the bot is down
            r = redis_for(stack.redis, 0)
            try:
                async def sl_fill() -> str | None:
                    for entry_id, f in await r.xrange(f"fills:{B}"):
                        if json.loads(f["fill"]).get("stop_order_type") == "StopLoss":
                            return str(entry_id)
                    return None
                sl_entry = await wait_for(sl_fill, 20, "the stop-loss fill on fills:lxalgo_001")
            finally:
                await r.aclose()
            await admin.pin_price(SYMBOL, None)
            assert state_of(stack, B).get("_fills_id") != sl_entry  # the bot has not seen it yet
            bot.start()
            await wait_for(lambda: _exit_seen(stack), 60, f"the exit event after the restart\n{bot.log_tail()}")
            await wait_for(lambda: _acked(stack, sl_entry), 20, "the fill acknowledged")
            # the listener announces at least once: the same fill again while the bot is down is dropped
            bot.kill9()
            r = redis_for(stack.redis, 0)
            try:
                [(_, original)] = await r.xrange(f"fills:{B}", sl_entry, sl_entry)
                repeat = str(await r.xadd(f"fills:{B}", original))
            finally:
                await r.aclose()
            bot.start()
            await wait_for(lambda: started_n(stack, B, 3), 60, f"the third start\n{bot.log_tail()}")
            await wait_for(lambda: _acked(stack, repeat), 20, f"the repeat read\n{bot.log_tail()}")
            dropped = [json.loads(ln)["entry"] for ln in bot.log_lines() if '"fill_repeat_dropped"' in ln]
    finally:
        bot.close()
        listener.close()
    kinds = [k for k, _ in await events(stack, B)]
    assert kinds.count("started") == 3
    second, third = [i for i, k in enumerate(kinds) if k == "started"][1:]
    assert kinds[second:third].count("exit") == 1  # the stop-loss fill, read after the restart
    assert kinds[third:].count("exit") == 0
    assert dropped == [repeat]  # its repeat after the next restart: recognised and dropped


async def _knows(stack: TestStack, bot: str) -> bool:
    return bool(state_of(stack, bot).get("_positions"))


async def _exit_seen(stack: TestStack) -> bool:
    evs = await events(stack, B)
    starts = [i for i, (k, _) in enumerate(evs) if k == "started"]
    return len(starts) >= 2 and any(k == "exit" and d.get("reason") == "sl" for k, d in evs[starts[1]:])


async def _acked(stack: TestStack, entry_id: str) -> bool:
    st = state_of(stack, B)
    return st.get("_fills_id") is not None and tuple(map(int, st["_fills_id"].split("-"))) >= tuple(
        map(int, entry_id.split("-")))
