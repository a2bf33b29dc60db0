"""`serve --stamp-clock venue`: every exchange timestamp (execTime, order and position createdTime /
updatedTime, private push creationTime, REST time windows) is venue-clock time, so a strategy bot sees
one clock as on Bybit; the default (`wall`) is unchanged. Real venue processes over sockets."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets

from services.bybit_sim.handle import REPO_ROOT, VenueAdmin, VenueProcess
from shared.bybit.auth import sign_ws_auth
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration
KEY, SECRET = "stamp-key", "stamp-secret"
HOUR_MS = 3_600_000
# long holds: the test places its orders inside one hold (each order request prolongs it)
STEPPED_VENUE = ["--stepped", "--step-quiet-ms", "3000", "--step-max-ms", "20000", "--stamp-clock", "venue"]


async def _private(venue: VenueProcess) -> Any:
    ws = await websockets.connect(venue.ws_private_url)
    expires = int(time.time() * 1000) + 10_000
    await ws.send(json.dumps({"op": "auth", "args": [KEY, expires, sign_ws_auth(SECRET, expires)]}))
    assert json.loads(await ws.recv())["success"] is True
    await ws.send(json.dumps({"op": "subscribe", "args": ["execution", "order", "position"]}))
    assert json.loads(await ws.recv())["success"] is True
    return ws


async def _push(ws: Any, topic: str, link: str) -> dict[str, Any]:
    """The first `topic` frame about the order `link` (executions and orders carry its orderLinkId)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("topic") == topic and (topic == "position"
                                            or any(r.get("orderLinkId") == link for r in frame["data"])):
            return frame


async def _held(admin: VenueAdmin, after: int = 0) -> int:
    """Waits for the stepped clock to hold at a close later than `after`, a hold that began less than half
    its quiet period ago (so the orders the test places next land in it); returns the close instant."""
    deadline = time.monotonic() + 30
    while True:
        clock = await admin.clock()
        if clock["held"] and clock["hold_at_ms"] > after and clock["held_for_ms"] < clock["quiet_ms"] // 2:
            assert clock["venue_time_ms"] == clock["hold_at_ms"]
            return int(clock["hold_at_ms"])
        assert time.monotonic() < deadline, clock
        await asyncio.sleep(0.05)


def _buy(http: Any, link: str) -> str:
    placed = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
                              orderLinkId=link)
    return str(placed["result"]["orderId"])


async def test_stepped_venue_stamps_venue_time_everywhere() -> None:
    with VenueProcess([(KEY, SECRET)], speed=1000.0, extra_args=STEPPED_VENUE) as venue:
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            ws = await _private(venue)
            try:
                hold = await _held(admin)
                order_id = _buy(http, "stamp-1")
                pushed_exec = await _push(ws, "execution", "stamp-1")
                pushed_order = await _push(ws, "order", "stamp-1")
                pushed_pos = await _push(ws, "position", "stamp-1")
                assert (await admin.clock())["hold_at_ms"] == hold  # still the same hold
            finally:
                await ws.close()
            rows = [r for r in await admin.executions(KEY, venue_time=True) if r["orderId"] == order_id]
        wall_now = int(time.time() * 1000)
        assert hold < wall_now - 365 * 24 * HOUR_MS  # the replayed candles are far in the past
        assert len(rows) == 1 and rows[0]["execTime"] == rows[0]["venueTimeMs"] == str(hold)

        # the WebSocket pushes: the venue execTime, order/position times, frame creationTime
        assert [r["execTime"] for r in pushed_exec["data"]] == [str(hold)]
        assert pushed_exec["creationTime"] == pushed_order["creationTime"] == pushed_pos["creationTime"] == hold
        row = [r for r in pushed_order["data"] if r["orderLinkId"] == "stamp-1"][-1]
        assert (row["createdTime"], row["updatedTime"]) == (str(hold), str(hold))
        pos = [r for r in pushed_pos["data"] if r["symbol"] == "BTCUSDT"][0]
        assert (pos["createdTime"], pos["updatedTime"]) == (str(hold), str(hold))

        # REST rows, and REST windows read in venue time
        order = http.get_order_history(category="linear", orderId=order_id)["result"]["list"][0]
        assert (order["createdTime"], order["updatedTime"]) == (str(hold), str(hold))
        pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert (pos["createdTime"], pos["updatedTime"]) == (str(hold), str(hold))
        default_window = http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert [r["execTime"] for r in default_window] == [str(hold)]
        venue_window = http.get_executions(category="linear", startTime=hold - HOUR_MS, endTime=hold + HOUR_MS)
        assert [r["orderId"] for r in venue_window["result"]["list"]] == [order_id]
        wall_window = http.get_executions(category="linear", startTime=wall_now - HOUR_MS, endTime=wall_now)
        assert wall_window["result"]["list"] == []
        hist_venue = http.get_order_history(category="linear", startTime=hold - HOUR_MS, endTime=hold + HOUR_MS)
        assert [o["orderId"] for o in hist_venue["result"]["list"]] == [order_id]
        hist_wall = http.get_order_history(category="linear", startTime=wall_now - HOUR_MS, endTime=wall_now)
        assert hist_wall["result"]["list"] == []


async def test_venue_stamps_stay_monotonic_across_a_restart() -> None:
    with VenueProcess([(KEY, SECRET)], speed=1000.0, extra_args=STEPPED_VENUE) as venue:
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            first_hold = await _held(admin)
            first = _buy(http, "before-restart")
        venue.restart()
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            second_hold = await _held(admin)
            second = _buy(http, "after-restart")
            rows = {r["orderId"]: r for r in await admin.executions(KEY, venue_time=True)}
        orders = {o["orderId"]: o for o in http.get_order_history(category="linear")["result"]["list"]}
    assert second_hold > first_hold
    assert rows[first]["execTime"] == str(first_hold) and rows[second]["execTime"] == str(second_hold)
    assert int(orders[first]["createdTime"]) < int(orders[second]["createdTime"]) == second_hold


async def test_default_wall_clock_is_unchanged() -> None:
    with VenueProcess([(KEY, SECRET)], speed=1000.0, extra_args=["--stepped"]) as venue:
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            hold = await _held(admin)
            before = int(time.time() * 1000)
            order_id = _buy(http, "wall-1")
            after = int(time.time() * 1000)
            row = [r for r in await admin.executions(KEY, venue_time=True) if r["orderId"] == order_id][0]
        order = http.get_order_history(category="linear", orderId=order_id)["result"]["list"][0]
        window = http.get_executions(category="linear", startTime=before - HOUR_MS, endTime=after + HOUR_MS)
    assert before <= int(row["execTime"]) <= after  # wall time; the venue clock is in the replayed past
    assert row["venueTimeMs"] == str(hold)
    assert before <= int(order["createdTime"]) <= after
    assert [r["orderId"] for r in window["result"]["list"]] == [order_id]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.bybit_sim", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_bad_stamp_clock_is_one_line_and_exit_2() -> None:
    done = _cli("serve", "--stamp-clock", "exchange")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bybit_sim: error: argument --stamp-clock: invalid choice: 'exchange' (choose from 'wall', 'venue')"]


def test_wall_stamped_state_is_refused_in_venue_mode(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    seeded = _cli("seed-history", "--state-file", str(state), "--account", f"{KEY}:{SECRET}", "--months", "1",
                  "--executions", "20", "--end-ms", "1790000000000")
    assert seeded.returncode == 0, seeded.stderr
    done = _cli("serve", "--state-file", str(state), "--stamp-clock", "venue", "--accounts", f"{KEY}:{SECRET}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bybit_sim: error: the state file holds orders/executions "
                                                   "stamped with the wall clock")


async def test_seeded_history_in_venue_mode_ends_at_the_venue_start(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    seeded = _cli("seed-history", "--state-file", str(state), "--account", f"{KEY}:{SECRET}", "--months", "1",
                  "--executions", "40", "--stamp-clock", "venue")
    assert seeded.returncode == 0, seeded.stderr
    with VenueProcess([(KEY, SECRET)], speed=1000.0, state_file=state, extra_args=STEPPED_VENUE) as venue:
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            hold = await _held(admin)
            order_id = _buy(http, "after-history")
            rows = await admin.executions(KEY)
    history = [int(r["execTime"]) for r in rows if r["orderId"] != order_id]
    assert len(history) == 40
    assert hold - 31 * 24 * HOUR_MS < min(history) and max(history) < hold - 5 * 60_000
    assert [r["execTime"] for r in rows if r["orderId"] == order_id] == [str(hold)]
    late = _cli("seed-history", "--state-file", str(state), "--account", "other:secret", "--executions", "5",
                "--stamp-clock", "venue", "--end-ms", str(hold + 10 * HOUR_MS))
    assert late.returncode == 2 and "after the venue's start time" in late.stderr


async def test_stops_fired_along_the_path_are_stamped_when_the_path_touched_them() -> None:
    """TP/SL fills happen inside a walk, between holds: execTime is the venue instant of the touch."""
    with VenueProcess([(KEY, SECRET)], speed=1000.0, extra_args=STEPPED_VENUE) as venue:
        http = pybit_http(venue, KEY, SECRET)
        async with VenueAdmin(venue.admin_url) as admin:
            hold = await _held(admin)
            last = Decimal(http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["lastPrice"])
            http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
                             orderLinkId="stops-1", stopLoss=str((last * Decimal("0.9995")).quantize(Decimal("0.1"))),
                             takeProfit=str((last * Decimal("1.0005")).quantize(Decimal("0.1"))))
            at = hold
            for _ in range(40):  # candles until one of the stops fires
                rows = await admin.executions(KEY, venue_time=True)
                if any(r["stopOrderType"] in ("StopLoss", "TakeProfit") for r in rows):
                    break
                await admin.step()
                at = await _held(admin, after=at)
            clock = await admin.clock()
        stops = {o["orderId"]: o for o in http.get_open_orders(category="linear", symbol="BTCUSDT",
                                                              orderFilter="StopOrder")["result"]["list"]}
        history = {o["orderId"]: o for o in http.get_order_history(category="linear")["result"]["list"]}
    fired = [r for r in rows if r["stopOrderType"] in ("StopLoss", "TakeProfit")]
    assert len(fired) == 1 and not stops  # the other one was deactivated when the position closed
    assert all(r["execTime"] == r["venueTimeMs"] for r in rows)
    assert hold < int(fired[0]["execTime"]) <= clock["venue_time_ms"]
    assert history[fired[0]["orderId"]]["updatedTime"] == fired[0]["execTime"]
