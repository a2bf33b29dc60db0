"""`--wall-replay`'s pure parts: the week shift, the whole-week cycle the path repeats, the state-file rule."""
from __future__ import annotations

from datetime import UTC, datetime

from services.bybit_sim.candles import CANDLE_MS, load_candles
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import DAY_MS, WEEK_MS, Market, VenueClock, wall_replay_cycle, wall_replay_shift_ms
from services.bybit_sim.state import wall_replay_conflict

START = int(datetime(2025, 4, 3, 17, 5, tzinfo=UTC).timestamp() * 1000)  # the shipped data's first candle


def test_shift_is_whole_weeks_and_puts_now_in_the_second_week_of_data() -> None:
    for now in (START + WEEK_MS, START + 2 * WEEK_MS - 1, START + 90 * WEEK_MS + 3 * DAY_MS + 12_345,
                int(datetime(2026, 12, 7, 2, 11, tzinfo=UTC).timestamp() * 1000)):
        shift = wall_replay_shift_ms(now, START)
        assert shift % WEEK_MS == 0
        assert START + WEEK_MS <= now - shift < START + 2 * WEEK_MS


def test_cycle_is_the_whole_weeks_every_symbol_has() -> None:
    loaded = {s: load_candles(i) for s, i in INSTRUMENTS.items()}
    n = wall_replay_cycle(loaded)
    assert n * CANDLE_MS == 12 * WEEK_MS  # 90 days of candles: 12 whole weeks, the last 6 days unused
    assert wall_replay_cycle({"X": loaded["BTCUSDT"][:n + 10]}) == n
    try:
        wall_replay_cycle({"X": loaded["BTCUSDT"][:2 * WEEK_MS // CANDLE_MS - 1]})
    except ValueError as exc:
        assert "two weeks" in str(exc)
    else:
        raise AssertionError("a cycle shorter than two weeks was accepted")


def test_the_path_is_the_shipped_candles_shifted_and_repeats_them_past_the_end() -> None:
    now = int(datetime(2026, 12, 7, 2, 11, tzinfo=UTC).timestamp() * 1000)
    market, shift = Market.wall_replay(VenueClock(now, 1.0, now))
    shipped = load_candles(INSTRUMENTS["ETHUSDT"])
    path = market.paths["ETHUSDT"]
    tick = INSTRUMENTS["ETHUSDT"].tick_size
    candle = shipped[3000]
    at = candle.start_ms + shift
    assert datetime.fromtimestamp(at / 1000, UTC).weekday() == datetime.fromtimestamp(candle.start_ms / 1000,
                                                                                       UTC).weekday()
    bar = path.ohlcv(at, at + CANDLE_MS - 1)
    assert (bar.open, bar.high, bar.low, bar.close) == tuple(x * tick for x in (candle.open, candle.high,
                                                                                   candle.low, candle.close))
    cycle = 12 * WEEK_MS
    for t in (at, at + 7_777, now):  # past the end of the 12 weeks: the same weeks again, same weekday/hour
        assert path.price_at(t + cycle) == path.price_at(t)
    # the seam: the last candle of the cycle is followed by the first one, at the same time of the week
    end = shipped[0].start_ms + shift + cycle
    assert path.ohlcv(end, end + CANDLE_MS - 1).open == shipped[0].open * tick


def test_state_file_rule() -> None:
    speed_run = {"venue_time_ms": START + WEEK_MS, "accounts": []}
    wall_run = {"venue_time_ms": START + 90 * WEEK_MS, "wall_replay_shift_ms": 85 * WEEK_MS, "accounts": []}
    seeded = {"venue_time_ms": None, "stamp_clock": "wall", "accounts": []}  # seed-history, no venue run yet
    assert "without --wall-replay" in (wall_replay_conflict(speed_run, True) or "")
    assert "--wall-replay" in (wall_replay_conflict(wall_run, False) or "")
    for doc in (None, seeded):
        assert wall_replay_conflict(doc, True) is None and wall_replay_conflict(doc, False) is None
    assert wall_replay_conflict(wall_run, True) is None and wall_replay_conflict(speed_run, False) is None
