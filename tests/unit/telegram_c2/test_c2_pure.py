"""The C2 service's pure parts: argument checks, report windows, text helpers, alert coalescing."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from services.telegram_c2.alerts import coalesce, fill_kind
from services.telegram_c2.args import BadArgs, check_args, parse_bot, parse_count, parse_fills_args, parse_window
from services.telegram_c2.auth import Access
from services.telegram_c2.deps import chunks
from services.telegram_c2.formatting import money
from shared.queries.windows import window_start

NOW = datetime(2026, 3, 10, 23, 59, tzinfo=timezone.utc)


def test_windows_are_utc_calendar_days() -> None:
    assert window_start("today", NOW) == date(2026, 3, 10)
    assert window_start("7d", NOW) == date(2026, 3, 4)
    assert window_start("30d", NOW) == date(2026, 2, 9)
    assert window_start("all", NOW) is None
    with pytest.raises(ValueError):
        window_start("1y", NOW)


def test_bots_by_id_or_unambiguous_short_name() -> None:
    assert parse_bot("momentum_001") == "momentum_001"
    assert parse_bot("LXALGO") == "lxalgo_001"
    assert parse_bot("all", allow_all=True) is None
    with pytest.raises(BadArgs, match="^Unknown bot 'all'"):
        parse_bot("all")
    with pytest.raises(BadArgs, match=r"^Unknown bot\. Known"):
        parse_bot("<script>")


@pytest.mark.parametrize("arg,message", [
    ("-1", "must be positive"), ("0", "must be positive"), ("abc", "Not a number of fills: 'abc'"),
    ("٣", "Not a number"), ("51", "At most 50 fills"), ("1e3", "Not a number"),
])
def test_counts(arg: str, message: str) -> None:
    with pytest.raises(BadArgs, match=message):
        parse_count(arg, what="fills", maximum=50)


def test_fills_args_in_either_order_and_limits() -> None:
    assert parse_fills_args([]) == parse_fills_args(["10"])
    assert parse_fills_args(["momentum", "5"]).count == 5
    assert parse_fills_args(["5", "momentum"]).bot_id == "momentum_001"
    with pytest.raises(BadArgs, match="Too many"):
        check_args(["a", "b"], 1)
    with pytest.raises(BadArgs, match="too long"):
        check_args(["x" * 33], 1)
    assert parse_window("7D") == "7d"


def test_only_admins_control() -> None:
    access = Access(frozenset({1}), frozenset({2}))
    assert [access.role_of(u) for u in (1, 2, 3, None)] == ["admin", "viewer", "stranger", "stranger"]
    assert access.may("admin", ("flatten",)) and access.may("viewer", ("analytics",))
    assert not access.may("viewer", ("pause",)) and not access.may("stranger", ("help",))
    assert not access.may("viewer", ("pause\nall", "pause")) and not access.may("stranger", ())


def test_money_rounds_half_even_and_never_shows_minus_zero() -> None:
    assert money(Decimal("1234.565")) == "1,234.56"
    assert money(Decimal("-0.001"), signed=True) == "+0.00"
    assert money(Decimal("2.5"), signed=True) == "+2.50"
    assert money(None) == "n/a"


def test_long_reports_split_at_line_breaks() -> None:
    text = "\n".join(f"line {i:04d}" for i in range(1000))
    parts = chunks(text, limit=100)
    assert all(len(p) <= 100 for p in parts)
    assert "\n".join(parts) == text


def test_a_burst_becomes_one_message() -> None:
    msgs = [{"bot_id": "momentum_001", "side": "Buy", "exec_qty": "0.010", "symbol": "BTCUSDT",
             "exec_price": "42000.50", "commission": "0.23", "exec_type": "Trade"}] * 12
    text = coalesce(msgs)
    assert text.splitlines()[0] == "12 new fills:"
    assert text.splitlines()[1] == "momentum_001 Buy 0.01 BTCUSDT @ 42000.5 fee 0.23"
    assert text.splitlines()[-1] == "... and 2 more (/fills)"
    assert coalesce(msgs[:1]).startswith("New fill: momentum_001 Buy")
    assert [fill_kind(k) for k in ("Trade", "Funding", "AdlTrade")] == ["trade", "funding", "other"]
