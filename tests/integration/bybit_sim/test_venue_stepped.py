"""The stepped clock: venue time holds at each 5-minute close (after the closed kline is pushed) while a
bot takes its time, orders placed in the hold fill at the next candle's open, and two runs with the
same seed and the same orders per candle give the same executions."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest
import websockets

from services.bybit_sim.candles import CANDLE_MS
from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration
KEY, SECRET = "step-key", "step-secret"
FIRST, LAST = 3, 9  # act on the closes of these candles (counted from the venue's start)
ARGS = ["--stepped", "--step-quiet-ms", "400", "--step-max-ms", "4000", "--order-rate-limit", "1000"]


def _tick(price: Decimal, pct: str) -> str:
    return str((price * (1 + Decimal(pct))).quantize(Decimal("0.1")))


async def _session(seed: int) -> tuple[list[tuple[Any, ...]], list[tuple[Decimal, Decimal]], int]:
    """Runs the script; returns the executions, (fill price, next candle's open) of the market orders
    placed in holds, and the number of holds seen held."""
    with VenueProcess([(KEY, SECRET)], speed=1000.0, seed=seed, extra_args=ARGS) as venue:
        http = pybit_http(venue, KEY, SECRET)
        fills: list[tuple[int, str]] = []
        held = 0
        async with VenueAdmin(venue.admin_url) as admin, websockets.connect(venue.ws_public_url) as ws:
            start_ms = (await admin.clock())["hold_at_ms"] - CANDLE_MS
            await ws.send(json.dumps({"op": "subscribe", "args": ["kline.5.BTCUSDT"]}))
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("topic") != "kline.5.BTCUSDT" or not frame["data"][0]["confirm"]:
                    continue
                k = (frame["data"][0]["start"] - start_ms) // CANDLE_MS + 1
                if k < FIRST:
                    continue
                close_ms = frame["data"][0]["end"] + 1
                clock = await admin.clock()
                held += int(clock["held"] and clock["venue_time_ms"] == close_ms)
                await asyncio.sleep(0.15)  # a slow bot: the clock waits for it
                last = Decimal(http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["lastPrice"])
                if k % 2 == 1:
                    placed = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market",
                                              qty="0.010", stopLoss=_tick(last, "-0.0005"),
                                              takeProfit=_tick(last, "0.0005"), orderLinkId=f"step-{k}")
                else:
                    placed = http.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market",
                                              qty="0.005", orderLinkId=f"step-{k}")
                fills.append((close_ms, placed["result"]["orderId"]))
                if k >= LAST:
                    break
            await admin.step()
            opens = []
            for close_ms, order_id in fills:
                open_row = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", start=close_ms,
                                          end=close_ms, limit=1)["result"]["list"][0]
                fill = http.get_executions(category="linear", orderId=order_id)["result"]["list"][0]
                opens.append((Decimal(fill["execPrice"]), Decimal(open_row[1])))
            rows = await admin.executions(KEY, venue_time=True)
    # Up to the close after the last hold: past it the clock runs on while the lookups above take wall time
    # (how far depends on the machine's load), and stops left open fire along the path there.
    until_ms = fills[-1][0] + CANDLE_MS
    execs = [(r["execId"], r["orderId"], r["side"], r["execPrice"], r["execQty"], r["stopOrderType"], r["execType"])
             for r in rows if int(r["venueTimeMs"]) < until_ms]
    return execs, opens, held


async def test_stepped_clock_holds_at_closes_and_replays_deterministically() -> None:
    first, opens, held = await _session(seed=5)
    assert held == LAST - FIRST + 1  # every close seen was held, at the close instant
    assert all(price == open_ for price, open_ in opens)  # orders in a hold fill at the next candle's open
    assert len(opens) == LAST - FIRST + 1
    second, _, _ = await _session(seed=5)
    assert first == second
    assert {"StopLoss", "TakeProfit"} & {e[5] for e in first}  # stops fired along the path, the same in both runs


async def test_clock_admin_without_stepping() -> None:
    with VenueProcess([(KEY, SECRET)], speed=1.0) as venue:
        async with VenueAdmin(venue.admin_url) as admin:
            clock = await admin.clock()
            assert (clock["stepped"], clock["held"]) == (False, False)
            with pytest.raises(Exception) as err:
                await admin.step()
            assert "without --stepped" in str(err.value)
