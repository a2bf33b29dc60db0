"""`serve --wall-replay`: venue time IS wall time (speed 1), the shipped candles shifted by whole weeks so
that now falls at least a week into them. Klines, fills and the venue clock all agree with the wall clock.
Real venue processes over sockets."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import websockets

from services.bybit_sim.candles import CANDLE_MS, load_candles
from services.bybit_sim.handle import REPO_ROOT, VenueAdmin, VenueProcess
from services.bybit_sim.instruments import INSTRUMENTS
from tests.integration.bybit_sim.conftest import pybit_http

pytestmark = pytest.mark.integration
KEY, SECRET = "wall-key", "wall-secret"
WEEK_MS = 7 * 86_400_000
FUNDING_MS = 8 * 3_600_000
TOLERANCE_MS = 5_000  # "within a few seconds": process and request latency, not a timing assertion


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _wall_venue(state_file: Path | None = None) -> VenueProcess:
    return VenueProcess([(KEY, SECRET)], speed=None, state_file=state_file, extra_args=["--wall-replay"])


def _last_closed_kline(http: object) -> tuple[int, list[str]]:
    """(wall now's 5-minute floor, the last closed 5-minute BTCUSDT kline), read within one 5-minute candle."""
    while True:
        before = _now_ms() // CANDLE_MS * CANDLE_MS
        rows = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=3)["result"]["list"]
        if _now_ms() // CANDLE_MS * CANDLE_MS == before:  # else a candle closed meanwhile: read again
            return before, rows[1]  # newest first: rows[0] is the candle still open


async def _kline_push(venue: VenueProcess) -> tuple[int, int]:
    """(start of the first unconfirmed kline.5.BTCUSDT push, wall now's 5-minute floor), read within one candle."""
    async with websockets.connect(venue.ws_public_url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["kline.5.BTCUSDT"]}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            rows = frame.get("data") or []
            if frame.get("topic") == "kline.5.BTCUSDT" and not rows[0]["confirm"]:
                floor = _now_ms() // CANDLE_MS * CANDLE_MS
                if _now_ms() - floor > 2_000:  # not just after a close (that tick may push the old candle)
                    return int(rows[0]["start"]), floor


async def test_wall_replay_klines_are_the_shipped_candles_shifted_by_whole_weeks() -> None:
    candles = load_candles(INSTRUMENTS["BTCUSDT"])
    tick = INSTRUMENTS["BTCUSDT"].tick_size
    with _wall_venue() as venue:
        async with VenueAdmin(venue.admin_url) as admin:
            clock = await admin.clock()
        shift = int(clock["wall_replay_shift_ms"])
        assert abs(int(clock["venue_time_ms"]) - _now_ms()) < TOLERANCE_MS
        assert shift % WEEK_MS == 0 and shift > 0
        assert candles[0].start_ms + WEEK_MS <= _now_ms() - shift < candles[-1].start_ms + CANDLE_MS
        http = pybit_http(venue, KEY, SECRET)
        floor, row = _last_closed_kline(http)
        while True:  # funding marks are on the wall clock's 8-hour marks
            mark = _now_ms() // FUNDING_MS
            ticker = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
            if _now_ms() // FUNDING_MS == mark:
                break
        pushed = await _kline_push(venue)
    assert int(ticker["nextFundingTime"]) == (mark + 1) * FUNDING_MS
    assert pushed[0] == pushed[1]  # the candle pushed as open is the one open on the wall clock
    start = int(row[0])
    assert start == floor - CANDLE_MS
    assert abs(_now_ms() - start) < 10 * 60_000
    shipped = {c.start_ms: c for c in candles}[start - shift]
    assert [Decimal(x) for x in row[1:5]] == [shipped.open * tick, shipped.high * tick, shipped.low * tick,
                                              shipped.close * tick]
    assert Decimal(row[5]) == shipped.volume


async def test_wall_replay_fills_are_stamped_now_on_both_clocks() -> None:
    with _wall_venue() as venue:
        http = pybit_http(venue, KEY, SECRET)
        before = _now_ms()
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
                         orderLinkId="wall-1")
        after = _now_ms()
        async with VenueAdmin(venue.admin_url) as admin:
            rows = [r for r in await admin.executions(KEY, venue_time=True) if r["orderLinkId"] == "wall-1"]
    assert len(rows) == 1
    exec_time, venue_time = int(rows[0]["execTime"]), int(rows[0]["venueTimeMs"])
    assert before - TOLERANCE_MS <= exec_time <= after + TOLERANCE_MS
    assert abs(venue_time - exec_time) <= TOLERANCE_MS


@pytest.mark.parametrize("extra", [["--stepped"], ["--speed", "60"], ["--speed", "1"]])
def test_wall_replay_refuses_stepped_and_speed(extra: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "services.bybit_sim", "serve", "--wall-replay", *extra,
                           "--accounts", f"{KEY}:{SECRET}"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bybit_sim: error: ")
    assert f"argument {extra[0]}: not allowed with argument --wall-replay" in lines[0]


async def test_wall_replay_state_file_is_resumed(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with _wall_venue(state) as venue:
        http = pybit_http(venue, KEY, SECRET)
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
                         orderLinkId="wall-resume")
        async with VenueAdmin(venue.admin_url) as admin:
            shift = (await admin.clock())["wall_replay_shift_ms"]
        venue.restart()
        async with VenueAdmin(venue.admin_url) as admin:
            clock = await admin.clock()
            links = [r["orderLinkId"] for r in await admin.executions(KEY)]
        position = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert clock["wall_replay_shift_ms"] == shift
    assert abs(int(clock["venue_time_ms"]) - _now_ms()) < TOLERANCE_MS
    assert links == ["wall-resume"]
    assert position["side"] == "Buy" and Decimal(position["size"]) == Decimal("0.010")


async def test_wall_replay_refuses_a_state_file_of_a_speed_run(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with VenueProcess([(KEY, SECRET)], speed=1000.0, state_file=state):
        pass  # the stop writes the state file, venue time in the replayed past
    assert state.exists()
    proc = subprocess.run([sys.executable, "-m", "services.bybit_sim", "serve", "--wall-replay",
                           "--state-file", str(state), "--accounts", f"{KEY}:{SECRET}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bybit_sim: error: ")
    assert "state file" in lines[0] and "without --wall-replay" in lines[0]
