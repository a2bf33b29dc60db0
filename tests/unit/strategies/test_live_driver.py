"""The live loop body: state saved before orders are sent; a restart continues where it stopped."""
from __future__ import annotations

from decimal import Decimal

from strategies.backtest.book import Book
from strategies.backtest.config import RunSettings
from strategies.backtest.data import sim_instruments
from strategies.examples.ema_cross import EmaCross, EmaCrossConfig
from strategies.runtime.candles import load_shipped, to_ms
from strategies.runtime.driver import LiveDriver
from strategies.runtime.feeds import ArrayFeed
from strategies.runtime.orders import Decision, PlaceOrder
from strategies.runtime.state import InMemoryStateStore

CFG = EmaCrossConfig(symbols=("BTCUSDT",), fast=5, slow=20, qty=Decimal("0.01"))


def bars():  # type: ignore[no-untyped-def]
    c = load_shipped("BTCUSDT", "5m").select(to_ms("2025-05-01"), to_ms("2025-05-05"))
    feed = ArrayFeed()
    return feed.add(EmaCross(CFG).subscriptions()[0], c)


class Exchange:
    """Where decisions go; checks, as each batch is sent, that the store already holds its ids."""

    def __init__(self, store: InMemoryStateStore) -> None:
        self.store = store
        self.sent: list[Decision] = []

    async def send(self, decisions: list[Decision]) -> None:
        saved = int(self.store.data["_order_counter"])  # type: ignore[arg-type]
        for d in decisions:
            assert isinstance(d.intent, PlaceOrder)
            assert int(d.intent.order_link_id.rsplit("-", 1)[1], 36) <= saved
        self.sent += decisions


async def drive(store: InMemoryStateStore, exchange: Exchange, warm, live) -> None:  # type: ignore[no-untyped-def]
    instruments = sim_instruments()
    book = Book(CFG.bot_id, {"BTCUSDT": instruments["BTCUSDT"]}, RunSettings())
    driver = await LiveDriver.load(EmaCross(CFG), store=store, account=book, instruments=book.instruments,
                                   send=exchange.send)
    driver.warm(warm)
    await driver.start(live[0].close_ms)
    for bar in live:
        await driver.bar(bar)


async def test_restart_keeps_counting_and_decides_as_an_uninterrupted_run() -> None:
    b = bars()
    warm = EmaCross(CFG).subscriptions()[0].warmup + 1
    cut, end = warm + 300, warm + 700
    once_store = InMemoryStateStore()
    once = Exchange(once_store)
    await drive(once_store, once, b[:warm], b[warm:end])

    store = InMemoryStateStore()
    first = Exchange(store)
    await drive(store, first, b[:warm], b[warm:cut])  # then the process dies (SIGKILL: nothing more runs)
    second = Exchange(store)
    await drive(store, second, b[cut - warm:cut], b[cut:end])  # restarted: warmed from the exchange's klines

    ids = [d.intent.order_link_id for d in first.sent + second.sent]  # type: ignore[union-attr]
    assert len(first.sent) > 3 and len(second.sent) > 3
    assert len(set(ids)) == len(ids)
    assert first.sent + second.sent == once.sent  # same decisions, same ids, same times
