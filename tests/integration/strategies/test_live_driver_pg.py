"""The runtime's live loop on the PostgreSQL state store: each batch of orders is sent only once the
database holds the state behind it, and a bot restarted as a new process (a new store, a new pool)
decides and numbers its orders as one never stopped."""
from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from strategies.backtest.book import Book
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.context import COUNTER_KEY
from strategies.runtime.driver import LiveDriver
from strategies.runtime.feeds import ArrayFeed
from strategies.runtime.orders import Decision, PlaceOrder
from strategies.runtime.state import InMemoryStateStore, StateStore
from strategies.runtime.state_pg import PgStateStore
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
CFG = EmaCrossConfig(symbols=("BTCUSDT",), fast=5, slow=20, qty=Decimal("0.01"))


def bars():  # type: ignore[no-untyped-def]
    c = load_shipped("BTCUSDT", "5m").select(to_ms("2025-05-01"), to_ms("2025-05-05"))
    return ArrayFeed().add(EmaCross(CFG).subscriptions()[0], c)


class Exchange:
    """Where decisions go; with a database, checks as each batch is sent that the committed state
    (read by another role, C2's) already counts its order ids."""

    def __init__(self, stack: TestStack | None = None) -> None:
        self.stack = stack
        self.sent: list[Decision] = []
        self.checked = 0

    async def send(self, decisions: list[Decision]) -> None:
        if self.stack is not None:
            async with await psycopg.AsyncConnection.connect(self.stack.db.dsn("c2"), prepare_threshold=None,
                                                             autocommit=True) as conn:
                row = await (await conn.execute(
                    "SELECT value FROM trading.strategy_state WHERE bot_id = %s AND key = %s",
                    (CFG.bot_id, COUNTER_KEY))).fetchone()
            assert row is not None
            for d in decisions:
                assert isinstance(d.intent, PlaceOrder)
                assert int(d.intent.order_link_id.rsplit("-", 1)[1], 36) <= int(row[0])
            self.checked += len(decisions)
        self.sent += decisions


async def drive(store: StateStore, exchange: Exchange, warm, live) -> None:  # type: ignore[no-untyped-def]
    book = Book(CFG.bot_id, {"BTCUSDT": sim_instruments()["BTCUSDT"]}, RunSettings())
    driver = await LiveDriver.load(EmaCross(CFG), store=store, account=book, instruments=book.instruments,
                                   send=exchange.send)
    driver.warm(warm)
    await driver.start(live[0].close_ms)
    for bar in live:
        await driver.bar(bar)


async def test_a_restarted_bot_continues_from_its_database_state(clean_state: TestStack) -> None:
    b = bars()
    warm = EmaCross(CFG).subscriptions()[0].warmup + 1
    cut, end = warm + 300, warm + 700
    once = Exchange()
    await drive(InMemoryStateStore(), once, b[:warm], b[warm:end])

    first, second = Exchange(clean_state), Exchange(clean_state)
    async with PgStateStore.open(clean_state.db, CFG.bot_id) as store:
        await drive(store, first, b[:warm], b[warm:cut])  # then the process dies
    async with PgStateStore.open(clean_state.db, CFG.bot_id) as store:  # a new process
        await drive(store, second, b[cut - warm:cut], b[cut:end])

    assert len(first.sent) > 3 and len(second.sent) > 3
    assert first.checked + second.checked == len(first.sent + second.sent)
    ids = [d.intent.order_link_id for d in first.sent + second.sent]  # type: ignore[union-attr]
    assert len(set(ids)) == len(ids)
    assert first.sent + second.sent == once.sent
