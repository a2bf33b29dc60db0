"""Klines of 15, 60, 240 and D minutes: REST rows and pushes are the 5-minute candles aggregated on UTC
boundaries, a pushed candle is `confirm: true` only once closed, and a closed 5-minute kline is exactly
the recorded candle."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import websockets

from services.bybit_sim.candles import CANDLE_MS, load_candles
from services.bybit_sim.handle import VenueProcess
from services.bybit_sim.instruments import INSTRUMENTS

pytestmark = pytest.mark.integration
MINUTES = {"15": 15, "60": 60, "240": 240, "D": 1440}


def _aggregate(rows: list[list[str]]) -> list[str]:
    """5-minute REST rows (oldest first) -> one row: first open, highest high, lowest low, last close."""
    return [rows[0][0], rows[0][1], max(rows, key=lambda r: Decimal(r[2]))[2],
            min(rows, key=lambda r: Decimal(r[3]))[3], rows[-1][4]]


@pytest.mark.parametrize("interval", list(MINUTES))
def test_rest_klines_aggregate_the_five_minute_candles_on_utc_boundaries(http, interval: str) -> None:
    size_ms = MINUTES[interval] * 60_000
    rows = http.get_kline(category="linear", symbol="BTCUSDT", interval=interval, limit=3)["result"]["list"]
    assert len(rows) == 3
    for row in rows:
        assert int(row[0]) % size_ms == 0  # UTC boundaries (days start at 00:00 UTC)
    closed = rows[1]  # rows[0] is still forming
    start = int(closed[0])
    fives = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", start=start, end=start + size_ms - 1,
                           limit=1000)["result"]["list"][::-1]
    assert len(fives) == size_ms // CANDLE_MS and int(fives[0][0]) == start
    assert closed[:5] == _aggregate(fives)
    assert Decimal(closed[5]) == sum(Decimal(r[5]) for r in fives)


def test_closed_five_minute_klines_are_the_recorded_candles(http) -> None:
    inst = INSTRUMENTS["ETHUSDT"]
    recorded = {c.start_ms: c for c in load_candles(inst)}
    rows = http.get_kline(category="linear", symbol="ETHUSDT", interval="5", limit=200)["result"]["list"][1:]
    span = len(recorded) * CANDLE_MS
    first = min(recorded)
    for row in rows:
        c = recorded[first + (int(row[0]) - first) % span]  # the replay wraps around the data
        assert row[1:5] == [inst.price_str(x * inst.tick_size) for x in (c.open, c.high, c.low, c.close)]


async def test_pushes_confirm_only_closed_candles_of_15_and_60_minutes(fast_venue: VenueProcess) -> None:
    topics = ["kline.15.ETHUSDT", "kline.60.ETHUSDT"]
    seen: dict[str, list[dict]] = {t: [] for t in topics}
    async with websockets.connect(fast_venue.ws_public_url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": topics}))
        deadline = time.monotonic() + 20
        while not all(any(r["confirm"] for r in rows) for rows in seen.values()):
            assert time.monotonic() < deadline, "no closed candle pushed"
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if frame.get("topic") in seen:
                seen[frame["topic"]] += frame["data"]
    for topic, rows in seen.items():
        size_ms = int(topic.split(".")[1]) * 60_000
        closed = [r for r in rows if r["confirm"]]
        assert all(r["start"] % size_ms == 0 and r["end"] == r["start"] + size_ms - 1 for r in rows)
        for c in closed:  # one confirmation per candle, its last push; every earlier push of it unconfirmed
            same = [r for r in rows if r["start"] == c["start"]]
            assert same[-1] is c and sum(r["confirm"] for r in same) == 1
        assert any(not r["confirm"] and r["start"] == closed[0]["start"] for r in rows) or len(closed) > 1
        assert not any(r["confirm"] for r in rows if r["start"] > closed[-1]["start"])
