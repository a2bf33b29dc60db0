"""The listener process against the simulated venue: exactness, positions, publish-once, health, SIGTERM."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from pybit.unified_trading import HTTP

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import KEYS, api_key
from tests.integration.listener.helpers import (
    FillsSubscriber, db_fills, field_differences, normalise_redis_positions, redis_positions, venue_positions,
    wait_for_count,
)
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
BOTS = ["shortseller_001", "lxalgo_001"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def pybit_for(venue: VenueProcess, bot_id: str) -> HTTP:
    _, key, secret = KEYS[bot_id]
    session = HTTP(api_key=key, api_secret=secret, max_retries=1)
    session.endpoint = venue.rest_url
    return session


def place_orders(session: HTTP, bot_id: str) -> dict[str, str]:
    """A small trading session: tagged entries and exits, an untagged (manual) order, a cancelled limit."""
    ids: dict[str, str] = {}
    ts = str(int(time.time() * 1000))[-9:]

    def order(name: str, **kw: Any) -> None:
        ids[name] = session.place_order(category="linear", **kw)["result"]["orderId"]

    order("entry", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.02", orderLinkId=f"{bot_id}-entry-{ts}")
    order("tp", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.01", reduceOnly=True,
          orderLinkId=f"{bot_id}-tp-{ts}")
    order("short", symbol="ETHUSDT", side="Sell", orderType="Market", qty="0.3", orderLinkId=f"{bot_id}-entry-e{ts}")
    order("manual", symbol="SOLUSDT", side="Buy", orderType="Market", qty="1")
    price = Decimal(session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["lastPrice"])
    order("resting", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01",
          price=str((price * Decimal("0.5")).quantize(Decimal("0.1"))), orderLinkId=f"{bot_id}-entry-r{ts}")
    session.cancel_order(category="linear", symbol="BTCUSDT", orderId=ids["resting"])
    return ids


async def pnl_applied_by_listener(stack: TestStack, timeout_s: float) -> int:
    """Waits until the PnL queue is empty; returns the fill rows the aggregates then count."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM trading.pnl_pending").fetchone()[0]:
            assert time.monotonic() < deadline, "the listener did not apply the PnL queue"
            await asyncio.sleep(0.2)
        return conn.execute("SELECT COALESCE(sum(fill_rows), 0) FROM trading.pnl_daily").fetchone()[0]


async def test_pybit_orders_land_exactly_once_field_by_field(make_listener: Any, clean_state: TestStack,
                                                           venue: VenueProcess, admin: VenueAdmin) -> None:
    listener = make_listener(BOTS)
    await listener.wait_healthy(clean_state, BOTS)
    assert listener.health().returncode == 0
    async with FillsSubscriber(clean_state) as fills:
        ids = {}
        for bot_id in BOTS:
            ids[bot_id] = await asyncio.to_thread(place_orders, pybit_for(venue, bot_id), bot_id)
        assert await admin.settle_funding() >= len(BOTS)  # non-trade executions on the open positions
        for bot_id in BOTS:
            truth = await admin.executions(api_key(bot_id))
            stored = await wait_for_count(clean_state, bot_id, len(truth), 20)
            assert stored == len(truth), listener.log_tail()
            rows = await asyncio.to_thread(db_fills, clean_state, bot_id)
            assert field_differences(truth, rows, bot_id) == []
            reasons = Counter(r["close_reason"] for r in rows)
            assert reasons["entry"] >= 2 and reasons["take_profit"] >= 1 and reasons["manual"] >= 1
            assert reasons["funding"] >= 1
            assert all(not r["exec_type"] == "Funding" or r["close_reason"] == "funding" for r in rows)
        await asyncio.sleep(0.5)
        for bot_id in BOTS:
            truth_ids = {e["execId"] for e in await admin.executions(api_key(bot_id))}
            assert fills.counts(bot_id) == Counter({e: 1 for e in truth_ids})

    # The listener applies the PnL queue itself, off its write path: no reader has asked yet.
    venue_rows = [len(await admin.executions(api_key(b))) for b in BOTS]
    assert await pnl_applied_by_listener(clean_state, timeout_s=40) == sum(venue_rows)

    for bot_id, db in (("shortseller_001", 0), ("lxalgo_001", 1)):
        _, key, secret = KEYS[bot_id]
        want = await venue_positions(venue.rest_url, key, secret, SYMBOLS)
        assert normalise_redis_positions(await redis_positions(clean_state, bot_id, db)) == want
        assert set(want) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}

    with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as conn:
        statuses = dict(conn.execute("SELECT order_id, status FROM trading.orders WHERE bot_id = 'shortseller_001'")
                        .fetchall())
    sid = ids["shortseller_001"]
    assert statuses[sid["resting"]] == "Cancelled"
    assert {statuses[sid[k]] for k in ("entry", "tp", "short", "manual")} == {"Filled"}

    assert listener.terminate() == 0
    assert "listener_stopped" in listener.log_tail()
    unhealthy = listener.health()
    assert unhealthy.returncode == 1 and "down" in unhealthy.stdout
