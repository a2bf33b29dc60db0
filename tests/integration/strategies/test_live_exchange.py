"""The live exchange adapter against the simulated venue over real sockets: refusals are not retried
and come back as rejections, a rate limit is backed off as the headers say (no retry storm), an
order whose answer is lost is looked up by orderLinkId and placed once, a repeated orderLinkId is
taken as placed."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.rest_client import BybitRestClient
from strategies.runtime.live.exchange import Exchange
from strategies.runtime.orders import Decision, PlaceOrder, TradingStop

pytestmark = pytest.mark.integration
KEY, SECRET = "live-ex-key", "live-ex-secret-0123456789"
BOT = "momentum_001"


@pytest.fixture(scope="module")
def venue() -> Iterator[VenueProcess]:
    with VenueProcess([(KEY, SECRET, "100000")], speed=1.0) as v:
        yield v


@pytest.fixture
async def exchange(venue: VenueProcess) -> AsyncIterator[Exchange]:
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.clear_faults()
    ex = Exchange(BOT, BybitRestClient(venue.rest_url, KEY, SECRET, timeout_s=2.0), backoff_s=0.05)
    yield ex
    await ex.close()
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.clear_faults()


def order(link: str, qty: str = "0.001", **kw: object) -> Decision:
    return Decision(0, PlaceOrder("BTCUSDT", "Buy", Decimal(qty), f"{BOT}-{link}", link.split("-")[0], **kw))  # type: ignore[arg-type]


async def placed(venue: VenueProcess, link: str) -> int:
    async with VenueAdmin(venue.admin_url) as admin:
        return sum(1 for e in await admin.executions(KEY) if e["orderLinkId"] == f"{BOT}-{link}")


@pytest.mark.parametrize("decision, code", [
    (order("entry-big", qty="90"), 110007),  # more than the wallet can margin
    (Decision(0, PlaceOrder("BTCUSDT", "Sell", Decimal("0.001"), f"{BOT}-exit-ro", "exit", reduce_only=True)), 110017),
    (order("entry-sl", stop_loss=Decimal("10000000")), 10001),  # a long's stop-loss above the price
    (Decision(0, TradingStop("ETHUSDT", stop_loss=Decimal("1"))), 10001),  # no position to stop
])
async def test_refusals_come_back_once_and_are_not_retried(exchange: Exchange, decision: Decision, code: int) -> None:
    rejections = await exchange.execute([decision])
    assert [r.code for r in rejections] == [code]
    assert exchange.stats.requests == 1 and exchange.stats.retries == 0


async def test_rate_limit_is_backed_off_per_headers_without_a_storm(exchange: Exchange, venue: VenueProcess) -> None:
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.rate_limit(1.0, api_key=KEY)
    rejections = await exchange.execute([order("entry-rl1")])
    assert rejections == []
    assert exchange.stats.throttled >= 1
    assert exchange.stats.requests <= 4  # waited for the reset the answer named, did not hammer
    assert await placed(venue, "entry-rl1") == 1


async def test_an_order_whose_answer_is_lost_is_looked_up_and_placed_once(exchange: Exchange, venue: VenueProcess) -> None:
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.http_5xx(0.3, api_key=KEY)
    rejections = await exchange.execute([order("entry-5xx")])
    assert rejections == []
    assert exchange.stats.retries >= 1 and exchange.stats.lookups >= 1
    assert await placed(venue, "entry-5xx") == 1


async def test_a_repeated_order_link_id_counts_as_placed(exchange: Exchange, venue: VenueProcess) -> None:
    assert await exchange.execute([order("entry-dup")]) == []
    assert await exchange.execute([order("entry-dup")]) == []  # 110072: an earlier attempt placed it
    assert exchange.stats.codes.get(110072) == 1
    assert await placed(venue, "entry-dup") == 1


async def test_refusals_in_a_row_on_one_endpoint_do_not_block_the_next_order(exchange: Exchange, venue: VenueProcess) -> None:
    """Each refusal still tells the limiter what the venue allows (it waited for ever on a probe)."""
    batch = [order("entry-r1", qty="90"), order("entry-r2", qty="90"), order("entry-ok")]
    rejections = await asyncio.wait_for(exchange.execute(batch), 10)
    assert [r.code for r in rejections] == [110007, 110007]
    assert await placed(venue, "entry-ok") == 1
