"""The bots' events as alert lines (pure): parsing, each kind's format, batching, the kind settings."""
from __future__ import annotations

import json

import pytest

from services.telegram_c2.config import C2Settings
from services.telegram_c2.events import (MAX_MESSAGE, BadEvent, batch_messages, event_line, parse_event, parse_kinds,
                                         wanted)

AT = "2026-12-06T10:00:01.250Z"


def ev(kind: str, payload: object, fields: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    base = {"kind": kind, "bot_id": "momentum_001", "at": AT, "data": json.dumps(payload)}
    return parse_event("events:momentum_001", "1-0", {**base, **(fields or {})})


def test_parse_refuses_what_is_not_an_event() -> None:
    assert ev("entry", {"symbol": "BTCUSDT"}).data == {"symbol": "BTCUSDT"}
    cases = [({"data": "{x"}, "data is not JSON"), ({"data": "3"}, "data is not a JSON object"),
             ({"kind": "nope"}, "unknown kind 'nope'"), ({"at": ""}, "missing at"),
             ({"at": "soon"}, "bad time 'soon'"), ({"at": "2026-12-06T10:00:00"}, "time without a zone"),
             ({"bot_id": "lxalgo_001"}, "bot_id 'lxalgo_001' on events:momentum_001")]
    for fields, why in cases:
        with pytest.raises(BadEvent, match=why):
            ev("entry", {}, fields)
    with pytest.raises(BadEvent, match="no fields"):
        parse_event("events:momentum_001", "1-0", None)


def test_each_kind_reads_well() -> None:
    entry = ev("entry", {"symbol": "SOLUSDT", "side": "Buy", "qty": "3", "price": "150.25", "stop_loss": "147",
                         "take_profit": "160", "trail": "1.5%", "reason": "cross"})
    assert event_line(entry, "x") == ("10:00:01 ENTRY x SOLUSDT long 3 @ 150.25, stop 147, target 160, trail 1.5%, "
                                      "reason cross")
    bare = ev("exit", {"symbol": "SOLUSDT", "qty": "3", "price": "151", "reason": "tp"})
    assert event_line(bare, "x") == "10:00:01 EXIT x SOLUSDT 3 @ 151, reason tp"
    full = ev("exit", {"symbol": "SOLUSDT", "qty": "3", "price": "151", "pnl": 2.25, "pnl_pct": "0.5",
                       "held_s": 93_784})
    assert event_line(full, "x") == "10:00:01 EXIT x SOLUSDT 3 @ 151, PnL +2.25 USDT (+0.50%), held 1d 2h"
    assert event_line(ev("stop_breakeven", {}), "x") == "10:00:01 STOP TO BREAKEVEN x"
    # as ShortSeller writes them (strategies/shortseller/strategy.py)
    short = ev("entry", {"symbol": "BTCUSDT", "price": "60000", "qty": "0.02", "regime": "ACTIVE", "ema_fast": "59990",
                         "ema_slow": "60010", "stop_loss": "61200", "take_profit": "57000", "trail_distance": "300",
                         "trail_activation": "58500", "order_link_id": "shortsel-entry-1"})
    assert event_line(short, "x") == ("10:00:01 ENTRY x BTCUSDT 0.02 @ 60000, EMA fast 59990, EMA slow 60010, regime "
                                      "ACTIVE, stop 61200, target 57000, trail 300, trail from 58500")
    closed = ev("exit", {"symbol": "BTCUSDT", "reason": "take_profit", "entry_price": "60000", "qty": "0.02",
                         "pnl_usdt": "59.1", "pnl_pct": "4.926", "holding_s": 5400, "adopted": False})
    assert event_line(closed, "x") == ("10:00:01 EXIT x BTCUSDT 0.02, entry 60000, PnL +59.10 USDT (+4.93%), "
                                       "held 1h 30m, reason take_profit")
    long_value = "e" * 500
    line = event_line(ev("strategy_error", {"error": long_value, "nested": {"a": [1]}}), "x")
    assert line == f"10:00:01 STRATEGY ERROR x: error {'e' * 77}..., nested {{\"a\":[1]}}"


def test_batches_split_only_past_the_length_limit() -> None:
    assert batch_messages([]) == []
    assert batch_messages(["a"]) == ["Bot event:\na"]
    assert batch_messages(["a", "b"]) == ["Bot events (2):\na\nb"]
    lines = [f"{i:03d} " + "x" * 200 for i in range(60)]
    parts = batch_messages(lines)
    assert len(parts) == 4 and all(len(p) <= MAX_MESSAGE for p in parts)
    assert parts[0].startswith("Bot events (60, part 1/4):\n000 ")
    assert [ln for p in parts for ln in p.splitlines()[1:]] == lines


def test_kind_settings() -> None:
    assert parse_kinds(" entry, exit ,") == frozenset({"entry", "exit"})
    assert wanted("summary", frozenset(), frozenset()) and not wanted("summary", frozenset(), frozenset({"summary"}))
    assert not wanted("summary", frozenset({"entry"}), frozenset())
    settings = C2Settings(C2_ALERT_KINDS="entry,exit,summary", C2_ALERT_KINDS_OFF="summary")
    assert settings.kinds_on == {"entry", "exit", "summary"} and settings.kinds_off == {"summary"}
    with pytest.raises(ValueError, match="unknown event kind 'entri'"):
        C2Settings(C2_ALERT_KINDS_OFF="entri")
