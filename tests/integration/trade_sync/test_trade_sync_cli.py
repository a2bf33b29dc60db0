"""Every bad input is one clear line on stderr, a non-zero exit code, and nothing written."""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import psycopg
import pytest
import redis

from services.bybit_sim.handle import VenueProcess, free_port
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack

KEY_VARS = [f"{p}_BYBIT_API_{s}" for _b, p, _k, _x in h.ACCOUNTS for s in ("KEY", "SECRET")]


@pytest.fixture
def platform_redis(clean_state: TestStack) -> Iterator[redis.Redis]:
    """Redis with the listener's consumer group present (the checks under test come after it)."""
    r = redis.Redis(port=clean_state.redis.redis_port, decode_responses=True,
                    password=clean_state.redis.redis_password.get_secret_value())  # type: ignore[union-attr]
    r.xgroup_create("ingest:executions", "listener", id="$", mkstream=True)
    yield r
    r.close()


def _nothing_written(stack: TestStack) -> None:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM trading.sync_runs), "
                              "(SELECT count(*) FROM trading.backfill_progress), "
                              "(SELECT count(*) FROM trading.fills)").fetchone()
    assert counts == (0, 0, 0)


def _one_line(res: h.CliResult, code: int, *fragments: str) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == code, res.stderr
    assert len(lines) == 1, res.stderr  # one message, no traceback, no log noise
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("args", "fragment"), [
    (["backfill", "--months", "3", "--bot", "nobody_001"], "unknown bot 'nobody_001'"),
    (["backfill", "--months", "0"], "at least 1"),
    (["backfill", "--months=-2"], "at least 1"),
    (["backfill", "--months", "25"], "more than Bybit keeps"),
    (["backfill", "--months", "100000"], "more than Bybit keeps"),
    (["backfill", "--months", "1.5"], "whole number"),
    (["backfill", "--months", "three"], "whole number"),
    (["backfill"], "--months"),
    (["backfill", "--months", "3", "--symbol", "btc-usdt"], "not a symbol"),
    (["sync", "--hours", "0"], "between 1 and"),
    (["sync", "--bot", "ghost"], "unknown bot 'ghost'"),
    (["reconcile"], "invalid choice"),
])
def test_bad_arguments(args: list[str], fragment: str, clean_state: TestStack, venue: VenueProcess) -> None:
    res = h.run_cli(args, h.base_env(clean_state.env, venue))
    _one_line(res, 2, fragment)
    _nothing_written(clean_state)


def test_missing_keys_of_the_requested_bot(clean_state: TestStack, venue: VenueProcess) -> None:
    env = h.base_env(clean_state.env, venue, bots=["shortseller_001"])
    _one_line(h.run_cli(["backfill", "--months", "1", "--bot", "lxalgo_001"], env), 2,
              "LXALGO_BYBIT_API_KEY is missing")
    _nothing_written(clean_state)


def test_no_keys_at_all(clean_state: TestStack, venue: VenueProcess) -> None:
    env = h.base_env(clean_state.env, venue, bots=[])
    _one_line(h.run_cli(["sync"], env), 2, "no bot has an API key pair")


def test_half_configured_key_pair(clean_state: TestStack, venue: VenueProcess) -> None:
    env = h.base_env(clean_state.env, venue)
    del env["MOMENTUM_BYBIT_API_SECRET"]
    _one_line(h.run_cli(["backfill", "--months", "1"], env), 2, "MOMENTUM_BYBIT_API_SECRET is missing")
    _nothing_written(clean_state)


def test_missing_database_password(clean_state: TestStack, venue: VenueProcess) -> None:
    env = h.base_env(clean_state.env, venue)
    del env["RECONCILER_DB_PASSWORD"]
    _one_line(h.run_cli(["backfill", "--months", "1"], env), 2, "RECONCILER_DB_PASSWORD is missing")


def test_wrong_secret_is_refused_without_leaking_it(clean_state: TestStack, venue: VenueProcess,
                                                    platform_redis: redis.Redis) -> None:
    env = h.base_env(clean_state.env, venue, SHORTSELLER_BYBIT_API_SECRET="not-the-right-secret-123")
    line = _one_line(h.run_cli(["backfill", "--months", "2"], env), 1,
                     "shortseller_001", "rejected the request signature", "SHORTSELLER_BYBIT_API_SECRET")
    assert "not-the-right-secret-123" not in line
    _nothing_written(clean_state)


def test_unknown_key_is_refused(clean_state: TestStack, venue: VenueProcess, platform_redis: redis.Redis) -> None:
    env = h.base_env(clean_state.env, venue, LXALGO_BYBIT_API_KEY="noSuchKey123")
    _one_line(h.run_cli(["sync", "--bot", "lxalgo_001"], env), 1, "rejected the API key", "LXALGO_BYBIT_API_KEY")
    _nothing_written(clean_state)


def test_unknown_symbol_is_refused_before_anything_is_written(clean_state: TestStack, venue: VenueProcess,
                                                               platform_redis: redis.Redis) -> None:
    env = h.base_env(clean_state.env, venue)
    _one_line(h.run_cli(["backfill", "--months", "1", "--symbol", "DOGEUSDT"], env), 2, "DOGEUSDT",
              "not a USDT linear instrument")
    _nothing_written(clean_state)


def test_exchange_unreachable(clean_state: TestStack, venue: VenueProcess, platform_redis: redis.Redis) -> None:
    env = h.base_env(clean_state.env, venue, BYBIT_REST_URL=f"http://127.0.0.1:{free_port()}",
                     TRADE_SYNC_MAX_ATTEMPTS="2")
    _one_line(h.run_cli(["backfill", "--months", "1", "--bot", "momentum_001"], env), 1,
              "momentum_001", "kept failing after 2 attempts", "connection failed")
    _nothing_written(clean_state)


def test_no_listener_consuming_the_stream(clean_state: TestStack, venue: VenueProcess) -> None:
    _one_line(h.run_cli(["backfill", "--months", "1"], h.base_env(clean_state.env, venue)), 1,
              "start the websocket listener first")
    _nothing_written(clean_state)


def test_a_second_run_is_refused_while_one_holds_the_lock(clean_state: TestStack, venue: VenueProcess,
                                                          platform_redis: redis.Redis) -> None:
    holder = {"token": "t", "what": "backfill --months 3", "pid": os.getpid(), "host": socket.gethostname(),
              "since": "2026-01-01T00:00:00+00:00"}
    platform_redis.set("lock:trade_sync:lxalgo_001", json.dumps(holder), ex=60)
    _one_line(h.run_cli(["sync"], h.base_env(clean_state.env, venue)), 3, "lxalgo_001 is busy", "backfill --months 3")
    _nothing_written(clean_state)
    assert platform_redis.get("lock:trade_sync:shortseller_001") is None  # all or nothing: none kept


def test_a_lock_left_by_a_killed_run_is_taken_over(clean_state: TestStack, venue: VenueProcess,
                                                   platform_redis: redis.Redis) -> None:
    dead = {"token": "t", "what": "backfill --months 3", "pid": 2 ** 22 + 12345, "host": socket.gethostname(),
            "since": "2026-01-01T00:00:00+00:00"}
    platform_redis.set("lock:trade_sync:lxalgo_001", json.dumps(dead), ex=60)
    res = h.run_cli(["status"], h.base_env(clean_state.env, venue))  # status takes no lock
    assert res.returncode == 0
    env = h.base_env(clean_state.env, venue, bots=["lxalgo_001"], TRADE_SYNC_INGEST_TIMEOUT_S="5")
    res = h.run_cli(["sync", "--bot", "lxalgo_001", "--json"], env)
    assert "stale_lock_taken_over" in res.stderr
    [outcome] = res.json()  # it ran (no listener here, so Redis holds no positions: drift, exit 1)
    assert outcome["bot_id"] == "lxalgo_001" and outcome["fetched"] == outcome["already_present"]
    assert platform_redis.get("lock:trade_sync:lxalgo_001") is None  # released at the end


def test_a_listener_that_stops_confirming_fails_the_run_and_records_no_window(
        clean_state: TestStack, venue: VenueProcess, platform_redis: redis.Redis) -> None:
    env = h.base_env(clean_state.env, venue, TRADE_SYNC_INGEST_TIMEOUT_S="2")  # the group exists, nobody reads
    res = h.run_cli(["backfill", "--months", "3", "--bot", "momentum_001"], env)
    assert res.returncode == 1
    failures = [ln for ln in res.stderr.splitlines() if ln.startswith("trade_sync:")]
    assert len(failures) == 1 and "did not confirm batch" in failures[0] and "momentum_001" in failures[0]
    with psycopg.connect(clean_state.db.dsn("owner", direct=True)) as conn:
        runs = conn.execute("SELECT status, error FROM trading.sync_runs").fetchall()
        progress = conn.execute("SELECT count(*) FROM trading.backfill_progress WHERE fetched > 0").fetchone()
    assert [r[0] for r in runs] == ["failed"] and "did not confirm" in runs[0][1]
    assert progress == (0,)  # no window with rows counts as done without the listener's commit
