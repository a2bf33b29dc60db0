"""/flatten closes the bot's positions on the exchange itself, with the bot's own key, and cancels
its open orders: checked against the simulated venue over real HTTP."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from shared.queries.control import Control
from shared.queries.flatten import Flattener
from shared.redis_client import redis_for
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
KEY, SECRET = "flat-key", "flat-secret"
OTHER_KEY, OTHER_SECRET = "other-key", "other-secret"


async def open_position(client: BybitRestClient, symbol: str, side: str, qty: str) -> None:
    await client.post("/v5/order/create", {"category": "linear", "symbol": symbol, "side": side,
                                           "orderType": "Market", "qty": qty, "orderLinkId": None})


async def positions(client: BybitRestClient) -> dict[str, Decimal]:
    resp = await client.get("/v5/position/list", {"category": "linear", "settleCoin": "USDT"})
    return {r["symbol"]: Decimal(r["size"]) for r in resp.result["list"] if Decimal(r["size"]) != 0}


async def test_flatten_closes_positions_and_cancels_orders(clean_state: TestStack) -> None:
    st = clean_state
    with VenueProcess([(KEY, SECRET), (OTHER_KEY, OTHER_SECRET)], speed=1.0, seed=3) as venue:
        async with VenueAdmin(venue.admin_url) as admin:
            await admin.pin_price("BTCUSDT", "60000")
            await admin.pin_price("ETHUSDT", "3000")
        bot = BybitRestClient(venue.rest_url, KEY, SECRET)
        other = BybitRestClient(venue.rest_url, OTHER_KEY, OTHER_SECRET)
        await open_position(bot, "BTCUSDT", "Buy", "0.010")
        await open_position(bot, "ETHUSDT", "Sell", "0.50")
        await open_position(other, "BTCUSDT", "Buy", "0.002")
        await bot.post("/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                            "orderType": "Limit", "qty": "0.001", "price": "50000"})
        assert await positions(bot) == {"BTCUSDT": Decimal("0.010"), "ETHUSDT": Decimal("0.50")}

        platform = redis_for(st.redis, 0)
        from shared.db.pool import open_pool
        pool = await open_pool(st.db, "c2", max_size=2)
        flattener = Flattener({"lxalgo_001": BybitRestClient(venue.rest_url, KEY, SECRET)})
        try:
            result = await Control(pool, platform, flattener).flatten("lxalgo_001", "admin:1")
            remaining = await positions(bot)
            open_orders = await bot.get("/v5/order/realtime", {"category": "linear", "settleCoin": "USDT"})
            history = await bot.get("/v5/order/history", {"category": "linear", "limit": 50})
            untouched = await positions(other)
            control = await platform.get("control:lxalgo_001")
        finally:
            await flattener.close()
            await pool.close()
            await platform.aclose()
            await bot.close()
            await other.close()
    assert remaining == {}
    assert open_orders.result["list"] == []
    assert untouched == {"BTCUSDT": Decimal("0.002")}
    assert (result.command, result.status) == ("flatten", "paused")
    assert result.detail == "closed BTCUSDT long 0.010, ETHUSDT short 0.50; 1 open order(s) cancelled"
    links = [o["orderLinkId"] for o in history.result["list"] if o["orderLinkId"].startswith("lxalgo_001-flatten-")]
    assert len(links) == 2 and all(len(link) <= 36 for link in links)
    assert control is not None and '"paused"' in control
