"""ShortSeller killed with SIGKILL mid-session and restarted on the venue keeps its memory, adopts the
short it did not know with the exchange's time, and trades as an uninterrupted run (the backtester).

The venue holds at every candle close until the test steps it (tests/support/parity.py `run_held`);
its exchange times are venue times (`--stamp-clock venue`). The configuration is the parity test's
(tests/integration/strategies/test_shortseller_parity.py), so this window enters three times, fires
a stop-loss and a trailing stop, and the cooldown refuses crosses. Two kills:
1. at a hold, holding its first short: its state (cross count, cooldown start, the plan and its entry
   time) is the same after the restart, and the entry time is the exchange's (the position's created
   time and the entry fill's execTime);
2. on the step its next entry fills, with the account's private pushes delayed so that the bot has
   sent the order but not heard of its fill: restarted, it adopts the short with the exchange's
   created time (which then runs its cooldown and holding time) and sets its stops, trailing stop
   included (the adopted short carries only the entry order's stop and target).
Then the fills and round trips over the whole window equal the backtester's.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from strategies.runtime.live.liveness import Liveness, liveness_key
from strategies.shortseller.state import SymbolState, symbol_from_builtins
from strategies.shortseller.strategy import at as utc_at
from tests.integration.strategies.test_shortseller_parity import (
    API_KEY, API_SECRET, BALANCE, BARS, BOT_ID, RULES, SYMBOL, VENUE_ARGS, backtest, compare,
)
from tests.support.live_bot import FIVE_MIN_MS, BotProcess, done, events, started_n, state_of, wait_for
from tests.support.parity import SPEED, ShortSellerProcess, bot_env, restart, run_held
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

KEY = f"symbol:{SYMBOL}"
ENV = {**RULES, "STRATEGY_LIVENESS_INTERVAL_S": "0.2"}  # its liveness record says soon when on_start ran
# While the next entry is awaited, the account's private pushes sent in the 2 s after each step are held
# 1.5 s each (under the listener's 3 s dead-after): the entry's fill reaches the bot >= 1.5 s after it.
DELAY_S, DELAY_MS = 2.0, 1500


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(API_KEY, API_SECRET, BALANCE)], speed=SPEED, extra_args=VENUE_ARGS) as v:
        yield v


def record(stack: TestStack) -> SymbolState:
    return symbol_from_builtins(state_of(stack, BOT_ID)[KEY])


async def short_on_exchange(venue: VenueProcess) -> dict[str, Any] | None:
    async with BybitRestClient(venue.rest_url, API_KEY, API_SECRET) as rest:
        rows = (await rest.get("/v5/position/list", {"category": "linear", "symbol": SYMBOL})).result["list"]
    return next((r for r in rows if Decimal(r["size"]) and r["side"] == "Sell"), None)


async def running_since(stack: TestStack, wall_ms: int) -> bool:
    """A process booted after `wall_ms` has started deciding (its on_start ran): its liveness record."""
    r = redis_for(stack.redis, 0)
    try:
        fields = await r.hgetall(liveness_key(BOT_ID))
    finally:
        await r.aclose()
    if not fields:
        return False
    rec = Liveness.parse(fields)
    return rec.boot_ms >= wall_ms and rec.started_ms > 0


async def entries_at_venue(admin: VenueAdmin) -> list[dict[str, Any]]:
    return [e for e in await admin.executions(API_KEY, venue_time=True)
            if e["execType"] == "Trade" and "-entry-" in (e.get("orderLinkId") or "")]


class Killer:
    """The two kills (module docstring), and what each found."""

    def __init__(self, stack: TestStack, venue: VenueProcess) -> None:
        self.stack, self.venue = stack, venue
        self.starts = 1
        self.kept: tuple[SymbolState, SymbolState, dict[str, Any], dict[str, Any]] | None = None
        self.armed = False  # the second kill waits for the next entry, pushes delayed
        self.adopted: tuple[dict[str, Any], dict[str, Any], SymbolState, dict[str, Any]] | None = None

    async def after_settle(self, n: int, at: int, bot: BotProcess) -> None:
        if self.kept is None:
            st = record(self.stack)
            if st.position is not None:  # holding its first short, idle at a hold: kill 1
                pos = await short_on_exchange(self.venue)
                async with VenueAdmin(self.venue.admin_url) as admin:
                    (entry,) = await entries_at_venue(admin)
                assert pos is not None
                self.starts += 1
                killed_ms = int(time.time() * 1000)
                await restart(self.stack, bot, BOT_ID, self.starts)
                await wait_for(lambda: running_since(self.stack, killed_ms), 30, f"on_start done\n{bot.log_tail()}")
                self.kept = (st, record(self.stack), pos, entry)
        elif not self.armed and self.adopted is None and record(self.stack).position is None:
            self.armed = True  # flat again: the next entry's fill is held back from the bot
        if self.armed:
            async with VenueAdmin(self.venue.admin_url) as admin:
                await admin.delay_pushes(DELAY_S, DELAY_MS, API_KEY)

    async def after_step(self, n: int, at: int, bot: BotProcess) -> None:
        if not self.armed:
            return
        await wait_for(lambda: done(self.stack, BOT_ID, at - FIVE_MIN_MS), 30, f"candle {at}\n{bot.log_tail()}")
        async with VenueAdmin(self.venue.admin_url) as admin:
            entries = await entries_at_venue(admin)
            if len(entries) == 2:  # the bot sent its entry and has not heard of the fill: kill 2
                before = record(self.stack)
                assert before.pending_entry is not None and before.position is None, before
                pos = await short_on_exchange(self.venue)
                assert pos is not None
                bot.kill9()
            await admin.clear_faults()
        if len(entries) == 2:
            self.armed = False
            self.starts += 1
            bot.start()
            await wait_for(lambda: started_n(self.stack, BOT_ID, self.starts), 60, f"restart\n{bot.log_tail()}")
            st = await wait_for(lambda: self._adopted(), 30, f"the short adopted\n{bot.log_tail()}")
            lv = st.position.levels
            levels = (lv.stop_loss, lv.take_profit, lv.trail_distance)
            # still held at this candle: the stops the bot sets on start reach the exchange
            stops = await wait_for(lambda: self._stops(levels), 30, f"the adopted short's stops {levels}\n{bot.log_tail()}")
            self.adopted = (entries[1], pos, st, stops)

    async def _adopted(self) -> SymbolState | None:
        st = record(self.stack)
        return st if st.position is not None and st.position.adopted else None

    async def _stops(self, levels: tuple[Decimal, Decimal, Decimal]) -> dict[str, Any] | None:
        pos = await short_on_exchange(self.venue)
        assert pos is not None, "the adopted short is gone while the venue holds"
        return pos if (Decimal(pos["stopLoss"]), Decimal(pos["takeProfit"]), Decimal(pos["trailingStop"])) == levels else None


async def test_shortseller_killed_and_restarted_trades_as_an_uninterrupted_run(
        clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    bot = ShortSellerProcess(bot_env(stack, venue, [BOT_ID], ENV))
    killer = Killer(stack, venue)
    live = await run_held(stack, venue, bot, BOT_ID, SYMBOL, API_KEY, BARS, after_step=killer.after_step,
                          after_settle=killer.after_settle)

    # kill 1: the memory survived, and the entry time is the exchange's
    assert killer.kept is not None, "never held a short"
    before, after, pos, entry = killer.kept
    assert after == before
    assert before.crosses is not None and before.crosses.count > 0 and before.position is not None
    assert before.last_entry_at == before.position.entry_time == utc_at(int(pos["createdTime"]))
    assert before.position.entry_time == utc_at(int(entry["execTime"])) == utc_at(int(entry["venueTimeMs"]))

    # kill 2: adopted with the exchange's created time, its stops set from its price, trailing stop included
    assert killer.adopted is not None, "the second entry never came"
    fill, pos, adopted, stops = killer.adopted
    assert adopted.position is not None and adopted.position.adopted and adopted.pending_entry is None
    created = utc_at(int(pos["createdTime"]))
    assert adopted.position.entry_time == adopted.last_entry_at == created
    assert created == utc_at(int(fill["execTime"])) == utc_at(int(fill["venueTimeMs"]))
    assert adopted.position.entry_price == Decimal(fill["execPrice"])
    assert Decimal(pos["trailingStop"]) == 0 and Decimal(stops["trailingStop"]) > 0  # set on adoption
    kinds = [(k, d) for k, d in await events(stack, BOT_ID)]
    adopted_events = [d for k, d in kinds if k == "adopted"]
    assert [datetime.fromisoformat(d["entry_time"]) for d in adopted_events] == [created]
    assert [k for k, _ in kinds].count("started") == 3

    # the whole window, both kills included, trades as the backtester's uninterrupted run
    compare(live, await backtest(venue, live))
