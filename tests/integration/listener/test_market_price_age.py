"""Stale inputs (issue 12 item 10): the market price key carries its age (and expires when the listener
stops writing it), read with its age by `AlphaDBClient.market_price`."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.websocket_listener.dispatch import Source
from shared.alpha_db_client import AlphaDBClient
from tests.integration.listener.test_write_path import Harness
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


def _ticker(symbol: str, price: str, ts_ms: int) -> str:
    return json.dumps({"topic": f"tickers.{symbol}", "type": "snapshot", "ts": ts_ms, "cs": 1,
                       "data": {"symbol": symbol, "lastPrice": price, "volume24h": "12.5"}})


async def test_the_market_price_is_read_with_its_age_and_expires(clean_state: TestStack) -> None:
    now = datetime.now(UTC)
    old_ms = int((now - timedelta(seconds=40)).timestamp() * 1000)
    async with Harness(clean_state) as h:
        await h.dispatcher.handle(Source("ws:public"), _ticker("BTCUSDT", "41500.10", int(now.timestamp() * 1000)))
        await h.dispatcher.handle(Source("ws:public"), _ticker("ETHUSDT", "2500.5", old_ms))  # sent 40 s late
        ttl = await h.redis[0].ttl("market:BTCUSDT:price")
    async with AlphaDBClient(bot_id="lxalgo_001", redis_db=1, db=clean_state.db, redis=clean_state.redis) as client:
        fresh = await client.market_price("BTCUSDT")
        stale = await client.market_price("ETHUSDT")
        missing = await client.market_price("SOLUSDT")
    assert fresh is not None and stale is not None and missing is None
    assert fresh.price == Decimal("41500.10") and fresh.age_s < 5
    assert stale.price == Decimal("2500.5") and 39 < stale.age_s < 50
    assert stale.updated_at == datetime.fromtimestamp(old_ms / 1000, UTC)
    assert 0 < ttl <= 60  # a price nobody refreshes goes away
