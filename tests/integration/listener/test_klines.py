"""Closed candles on `klines:{symbol}:{interval}` (issue 11 item 5): only `confirm: true` pushes, one entry
per candle with the candle start as its id, in order, each equal to the venue's own candle."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from services.bybit_sim.handle import VenueProcess
from services.websocket_listener.dispatch import Source
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from tests.integration.listener.conftest import KEYS, ListenerProcess, listener_env
from tests.integration.listener.test_write_path import Harness
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
INTERVAL_MS = {"5": 300_000, "15": 900_000}


@pytest.fixture(scope="module")
def fast_venue() -> Iterator[VenueProcess]:
    # 1000x: a 5 minute candle closes every 0.3 s of wall time.
    with VenueProcess([(key, secret, "10000000") for _, key, secret in KEYS.values()], speed=1000.0) as v:
        yield v


async def _entries(stack: TestStack, key: str) -> list[tuple[str, dict[str, str]]]:
    r = redis_for(stack.redis, 0)
    try:
        return await r.xrange(key)
    finally:
        await r.aclose()


async def test_closed_candles_reach_their_stream_once_in_order_as_the_venue_has_them(
        clean_state: TestStack, fast_venue: VenueProcess) -> None:
    bot_id = "momentum_001"
    listener = ListenerProcess(listener_env(clean_state, fast_venue, [bot_id], LISTENER_KLINE_INTERVALS="5,15",
                                            LISTENER_SYMBOLS="BTCUSDT,ETHUSDT")).start()
    try:
        await listener.wait_healthy(clean_state, [bot_id])
        deadline = asyncio.get_running_loop().time() + 60
        while len(await _entries(clean_state, "klines:ETHUSDT:15")) < 8:
            assert asyncio.get_running_loop().time() < deadline, listener.log_tail()
            await asyncio.sleep(0.2)
        assert listener.terminate() == 0
    finally:
        listener.close()
    async with BybitRestClient(fast_venue.rest_url, *KEYS[bot_id][1:]) as rest:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            for interval, width in INTERVAL_MS.items():
                entries = await _entries(clean_state, f"klines:{symbol}:{interval}")
                starts = [int(entry_id.split("-")[0]) for entry_id, _ in entries]
                assert len(entries) >= 8
                # One entry per candle, consecutive (the connection stayed up), ids the candle starts.
                assert starts == list(range(starts[0], starts[0] + width * len(starts), width)), starts
                assert all(entry_id.endswith("-0") and f["start"] == entry_id[:-2] for entry_id, f in entries)
                assert {(f["symbol"], f["interval"]) for _, f in entries} == {(symbol, interval)}
                venue_rows = (await rest.get("/v5/market/kline", {
                    "category": "linear", "symbol": symbol, "interval": interval, "start": starts[0],
                    "end": starts[-1], "limit": 1000})).result["list"]
                by_start = {int(row[0]): row[1:] for row in venue_rows}
                for start, (_, f) in zip(starts, entries):
                    # Closed candles only: a forming candle would differ from the venue's final one.
                    want = [Decimal(v) for v in by_start[start]]
                    got = [Decimal(f[k]) for k in ("open", "high", "low", "close", "volume", "turnover")]
                    assert got == want, (symbol, interval, start)


def _kline_frame(start_ms: int, close: str, confirm: bool) -> str:
    return json.dumps({"topic": "kline.5.BTCUSDT", "type": "snapshot", "ts": start_ms + 300_000, "data": [
        {"start": start_ms, "end": start_ms + 299_999, "interval": "5", "open": "100.5", "close": close,
         "high": "101", "low": "99.5", "volume": "12.5", "turnover": "1250.75", "confirm": confirm,
         "timestamp": start_ms + 300_000}]})


async def test_a_repeated_or_older_candle_is_refused_and_a_forming_one_never_enters(clean_state: TestStack) -> None:
    public = Source("ws:public")
    t0 = 1_750_000_200_000
    async with Harness(clean_state) as h:
        for frame in (_kline_frame(t0, "100.7", False), _kline_frame(t0, "100.9", True),  # forming, then closed
                      _kline_frame(t0, "100.9", True),  # a duplicate push
                      _kline_frame(t0 + 300_000, "101", False), _kline_frame(t0 + 300_000, "100.8", True),
                      _kline_frame(t0, "100.9", True)):  # a late repeat of an older candle
            await h.dispatcher.handle(public, frame)
        entries: list[tuple[str, dict[str, Any]]] = await h.redis[0].xrange("klines:BTCUSDT:5")
    assert [(i, f["close"]) for i, f in entries] == [(f"{t0}-0", "100.9"), (f"{t0 + 300_000}-0", "100.8")]
    assert entries[0][1] == {"start": str(t0), "open": "100.5", "high": "101", "low": "99.5", "close": "100.9",
                             "volume": "12.5", "turnover": "1250.75", "interval": "5", "symbol": "BTCUSDT"}
    assert (h.counters.candles_written, h.counters.candles_repeated) == (2, 2)
