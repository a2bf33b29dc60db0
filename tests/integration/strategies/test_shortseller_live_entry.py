"""Regression: a live bot with runtime risk guards (ShortSeller) enters on a flat symbol.

The live account knew a symbol's last price only from the position list's mark price, so on a flat
symbol it was 0, the risk gate's notional check raised ("notional_usdt must be > 0") and the runtime
halted the symbol: `python -m strategies.shortseller` never placed an order on the venue. The close of
the candle being decided is now the last price its decisions see, as in the backtester.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env
from tests.support.live_bot import FIVE_MIN_MS, count_started, done, events, hold, live_fills, step_to_next, wait_for
from tests.support.parity import ShortSellerProcess, bot_env
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

BOT_ID = "shortseller_001"
# held until the test steps; one clock for fills and candles
HELD = ["--stepped", "--step-quiet-ms", "600000", "--step-max-ms", "600000", "--stamp-clock", "venue"]
RULES = {"SHORTSELLER_SYMBOLS": "BTCUSDT", "SHORTSELLER_EMA_FAST_LEN": "5", "SHORTSELLER_EMA_SLOW_LEN": "13"}


@pytest.fixture
def held_venue() -> Iterator[VenueProcess]:
    with VenueProcess([(KEYS[BOT_ID][1], KEYS[BOT_ID][2], "1000000")], speed=3000, extra_args=HELD) as v:
        yield v


async def test_shortseller_enters_on_a_flat_symbol(clean_state: TestStack, held_venue: VenueProcess) -> None:
    stack, venue = clean_state, held_venue
    listener = ListenerProcess(listener_env(stack, venue, [BOT_ID])).start()
    bot = ShortSellerProcess(bot_env(stack, venue, [BOT_ID], RULES))
    try:
        await listener.wait_healthy(stack, [BOT_ID])
        bot.start()
        await wait_for(lambda: count_started(stack, BOT_ID), 90, f"the bot to start\n{bot.log_tail()}")
        async with VenueAdmin(venue.admin_url) as admin:
            at = await wait_for(lambda: hold(admin), 20, "the first hold")
            entries = []
            for _ in range(30):  # it enters within the first few candles of this window
                at = await step_to_next(admin, at)
                await wait_for(lambda: done(stack, BOT_ID, at - FIVE_MIN_MS), 30,
                               f"the bot to handle {at - FIVE_MIN_MS}\n{bot.log_tail()}", every_s=0.02)
                fills = live_fills(await admin.executions(KEYS[BOT_ID][1], venue_time=True), BOT_ID)
                entries = [f for f in fills if f.reason == "entry"]
                if entries:
                    break
        kinds = [k for k, _ in await events(stack, BOT_ID)]
    finally:
        bot.close()
        listener.close()
    assert "strategy_error" not in kinds, kinds
    assert entries and entries[0].link_id == f"{BOT_ID}-entry-1" and entries[0].side == "Sell", entries
