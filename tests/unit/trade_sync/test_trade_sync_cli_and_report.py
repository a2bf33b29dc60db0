from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta

import pytest

from services.trade_sync.backfill import BotOutcome
from services.trade_sync.cli import build_parser
from services.trade_sync.errors import UsageError
from services.trade_sync.ingest import parse_result
from services.trade_sync.lock import describe_holder, holder_is_dead
from services.trade_sync.progress import format_eta, render_bar
from services.trade_sync.report import backfill_table, failure_lines, status_table, sync_table
from services.trade_sync.service import heartbeat_age_s
from services.trade_sync.status import SyncBotStatus
from services.trade_sync.store import RunTally


@pytest.mark.parametrize(("argv", "fragment"), [
    (["backfill", "--months", "0"], "at least 1"),
    (["backfill", "--months", "25"], "more than Bybit keeps"),
    (["backfill", "--months", "x"], "whole number"),
    (["backfill"], "--months"),
    (["sync", "--hours", "100000"], "between 1 and"),
    (["nonsense"], "invalid choice"),
])
def test_parser_errors_are_usage_errors(argv: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        build_parser().parse_args(argv)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_parser_accepts_the_documented_forms() -> None:
    args = build_parser().parse_args(["backfill", "--months", "3", "--bot", "lxalgo_001", "--symbol", "BTCUSDT"])
    assert (args.command, args.months, args.bot, args.symbol, args.json) == ("backfill", 3, "lxalgo_001", "BTCUSDT",
                                                                          False)
    assert build_parser().parse_args(["status", "--json"]).json
    assert build_parser().parse_args(["sync"]).hours is None


def test_result_hash_parsing() -> None:
    fields = {"received": "100", "inserted": "97", "duplicates": "3", "rejected": "0"}
    r = parse_result("b1", 100, fields)
    assert r is not None and (r.inserted, r.duplicates, r.sent) == (97, 3, 100)
    assert parse_result("b1", 100, {}) is None
    assert parse_result("b1", 100, {**fields, "inserted": "x"}) is None


def test_lock_holder_liveness() -> None:
    host = socket.gethostname()
    alive = json.dumps({"pid": os.getpid(), "host": host, "what": "sync", "since": "t"})
    dead = json.dumps({"pid": 2 ** 22 + 4321, "host": host, "what": "sync", "since": "t"})
    elsewhere = json.dumps({"pid": 2 ** 22 + 4321, "host": host + "-other", "what": "sync", "since": "t"})
    assert not holder_is_dead(alive, host)
    assert holder_is_dead(dead, host)
    assert not holder_is_dead(elsewhere, host)  # cannot tell: wait for the expiry
    assert not holder_is_dead("garbage", host)
    assert "sync (pid" in describe_holder(alive) and describe_holder(None) == "another run"


def test_heartbeat_age() -> None:
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    assert heartbeat_age_s("2026-01-01T12:00:00Z", now) == 30
    assert heartbeat_age_s(None, now) is None
    assert heartbeat_age_s("yesterday", now) is None
    assert heartbeat_age_s("2026-01-01T12:00:00", now) is None  # naive: not ours


def test_progress_bar() -> None:
    line = render_bar(12, 39, 8_400, 6.0)
    assert line.startswith("[") and "12/39 windows" in line and "8,400 execs" in line and "1,400/s" in line
    assert "ETA 00:14" in line  # 6 s for 12 windows -> 13.5 s for the 27 left
    assert "ETA --:--" in render_bar(0, 39, 0, 1.0)
    assert format_eta(3_725) == "1:02:05"


def test_tables() -> None:
    t = RunTally(windows_total=14, windows_done=14, windows_resumed=3, pages=30, fetched=2_900, inserted=2_000,
                 already_present=900)
    text = backfill_table([BotOutcome("lxalgo_001", "ok", t, 1.23),
                           BotOutcome("momentum_001", "failed", RunTally(), 0.5, "momentum_001: bad key")])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["bot", "result", "windows"]
    assert "14/14 (+3 before)" in lines[2] and "2900" in lines[2] and "1.2s" in lines[2]
    assert lines[-1].split()[:2] == ["momentum_001", "failed"]
    assert failure_lines([BotOutcome("momentum_001", "failed", RunTally(), 0.5, "momentum_001: bad key"),
                          BotOutcome("lxalgo_001", "partial", RunTally(), 0.5, "3 rows rejected")]) == [
        "momentum_001: bad key", "lxalgo_001: 3 rows rejected"]
    s = RunTally(fetched=120, missing_found=37, recovered=37,
                 drift=[{"symbol": "BTCUSDT", "kind": "size"}], drift_found=1)
    text = sync_table([BotOutcome("shortseller_001", "partial", s, 1.0, "position drift on 1 symbol(s)")],
                      skipped=["lxalgo_001"])
    assert "BTCUSDT:size" in text and text.splitlines()[-1] == "lxalgo_001: skipped (another run holds its lock)"
    assert "position drift on 1 symbol(s)" not in text  # failures go to stderr, not into the table
    now = datetime(2026, 1, 2, tzinfo=UTC)
    st = SyncBotStatus("shortseller_001", fills=10, trades=7, first_fill=now - timedelta(days=1), last_fill=now,
                   last_sync_at=now, last_sync_status="ok", last_sync_missing=3, last_sync_recovered=3,
                   gaps_found_total=5, recovered_total=5)
    text = status_table([st, SyncBotStatus("lxalgo_001")])
    row = text.splitlines()[2]
    assert "10 (7 trades)" in row and "3/3" in row and "5/5" in row and "2026-01-02 00:00:00 ok" in row
    assert text.splitlines()[3].split()[0] == "lxalgo_001" and "never" in text.splitlines()[3]
    assert st.as_json()["last_fill"] == "2026-01-02T00:00:00+00:00"
