"""After a long venue silence the private connection is back at once, not after the backoff cap.

During a silence the venue accepts connections but answers nothing, so every reconnect attempt ends in
the handshake timeout. The listener used to escalate its backoff on each such timeout up to
backoff_max_s (30 s), so when the venue answered again it could still be asleep for up to 30 s, plus a
handshake timeout for an attempt begun just before the end (chaos seed 2026: momentum_001 up again
+31 s after the last silence, its Redis position stale until then). A timed-out attempt has already
waited handshake_timeout_s; it must not also grow the backoff.

Production backoff (0.5..30 s) and catch-up schedule (300 s); only the ping, dead-after and handshake
timeout are scaled down so that a 35 s silence holds many attempts.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from tests.integration.listener.conftest import KEYS, PRODUCTION_TIMING, api_key
from tests.integration.listener.helpers import (
    log_events, normalise_redis_positions, redis_positions, venue_positions, wait_for_count,
)
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
HANDSHAKE_S = 1.0
SILENCE_S = 35.0


def log_time(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))


async def test_private_connection_is_back_right_after_a_long_silence(make_listener: Any, clean_state: TestStack,
                                                                     venue: VenueProcess,
                                                                     admin: VenueAdmin) -> None:
    bot_id, key = "momentum_001", api_key("momentum_001")
    private = f"ws:{bot_id}"
    backoff_min = float(PRODUCTION_TIMING["LISTENER_BACKOFF_MIN_S"])
    backoff_max = float(PRODUCTION_TIMING["LISTENER_BACKOFF_MAX_S"])
    assert (backoff_min, backoff_max) == (0.5, 30.0)
    listener = make_listener([bot_id], **{**PRODUCTION_TIMING, "LISTENER_PING_INTERVAL_S": "0.5",
                                          "LISTENER_DEAD_AFTER_S": "2",
                                          "LISTENER_HANDSHAKE_TIMEOUT_S": str(HANDSHAKE_S)})
    await listener.wait_healthy(clean_state, [bot_id])
    silence_start = datetime.now(UTC)
    await admin.silence(SILENCE_S, key)  # this key's connections: no auth answer, no pongs, no pushes
    await asyncio.sleep(SILENCE_S + 0.2)
    silence_end = datetime.now(UTC)
    # Made after the silence: only a live connection (or the catch-up after its reconnect) brings them
    # in; the scheduled catch-up is 300 s away.
    gen = await admin.generate(key, count=5, rate_per_s=20, symbols=["SOLUSDT"], prefix="aft")
    assert (await admin.wait_generation(gen, timeout_s=30))["done"] == 5
    truth = await admin.executions(key)
    # Bound: half the backoff cap, the shortest sleep the old code took once it had escalated to it.
    stored = await wait_for_count(clean_state, bot_id, len(truth), backoff_max / 2)
    text = listener.log_path.read_text(errors="replace")
    assert stored == len(truth), text[-4000:]
    _, _, secret = KEYS[bot_id]
    await asyncio.sleep(1.0)  # the position push follows the fill
    assert normalise_redis_positions(await redis_positions(clean_state, bot_id, 2)) == \
        await venue_positions(venue.rest_url, key, secret, SYMBOLS)

    events = [e for e in log_events(text, "connection_lost", "connection_up") if e.get("connection") == private]
    timeouts = [e for e in events if e["event"] == "connection_lost" and e["error"].startswith("TimeoutError")
                and silence_start < log_time(e) < silence_end]
    assert len(timeouts) >= 5, text[-4000:]  # the silence held many attempts, each a handshake timeout
    # After a timed-out attempt the listener waits the first backoff step only (it chose so, logged) ...
    assert all(e["retry_in_s"] <= backoff_min for e in timeouts), [e["retry_in_s"] for e in timeouts]
    # ... so it keeps trying once per handshake timeout; the old code's gaps grew to 8..30 s.
    gaps = [(log_time(b) - log_time(a)).total_seconds() for a, b in zip(timeouts, timeouts[1:])]
    assert max(gaps) < HANDSHAKE_S + backoff_min + 2.5, gaps
    # The replacement: the first connection up after the silence's attempts began (it can precede
    # silence_end, taken here a moment after the venue's silence is over).
    up = next((e for e in events if e["event"] == "connection_up" and log_time(e) > log_time(timeouts[0])), None)
    assert up is not None, text[-4000:]
    print(f"\nsilence {SILENCE_S:.0f}s on {private} (handshake timeout {HANDSHAKE_S}s, backoff "
          f"{backoff_min}..{backoff_max}s): {len(timeouts)} timed-out attempts, gaps {min(gaps):.1f}..{max(gaps):.1f}s; "
          f"up again +{(log_time(up) - silence_end).total_seconds():.1f}s after the silence ended; "
          f"{len(truth)} venue executions all stored, Redis positions equal to the venue's")
