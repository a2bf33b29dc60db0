"""Pure parts of the operators' commands: aliases, windows, argument order, the verdict, the kill
switch's report."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from services.telegram_c2.args import BadInput, parse_analytics_args, parse_daily_args, parse_trades_args
from services.telegram_c2.formatting_ops import format_kill
from shared.bots import resolve_bot
from shared.queries.flatten import FlattenOutcome, Leftovers
from shared.queries.killswitch import KillOutcome, KillReport
from shared.queries.results import BotStatus, Heartbeat, PoolRow, StatusReport, SyncRow
from shared.queries.verdict import verdict
from shared.queries.windows import window_start

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def test_one_resolver_for_ids_aliases_and_short_names() -> None:
    assert [resolve_bot(n) for n in ("alpha", "Bravo", " CHARLIE ", "lxalgo", "momentum_001")] == [
        "shortseller_001", "lxalgo_001", "momentum_001", "lxalgo_001", "momentum_001"]
    assert resolve_bot("delta") is None and resolve_bot("") is None and resolve_bot("all") is None


def test_scope_arguments_in_either_order() -> None:
    assert parse_analytics_args(["alpha", "14"]) == parse_analytics_args(["14d", "alpha"])
    assert parse_analytics_args([]).value == "today" and parse_analytics_args(["all"]).value == "all"
    assert parse_analytics_args(["all", "bravo"]).bot_id == "lxalgo_001"
    assert parse_daily_args(["charlie"]).value == 7 and parse_trades_args(["3"]).bot_id is None
    assert window_start("14d", NOW) == date(2026, 2, 25)
    for args in (["0"], ["366"], ["alpha", "bravo"], ["1", "2"], ["x", "y", "z"], ["-1"], ["7x"]):
        with pytest.raises(BadInput):
            parse_analytics_args(args)


def status(*, bots: tuple[BotStatus, ...] = (), services: tuple[str, ...] = ("websocket_listener:public",
           "trade_sync:scheduler"), db: bool = True, redis: bool = True) -> StatusReport:
    return StatusReport(NOW, tuple(Heartbeat(s, 1.0) for s in services), bots, db, 1.0, redis, 1.0)


def bot(bot_id: str, *, up: bool | None = True, beat: float | None = 5.0, control: str = "active") -> BotStatus:
    return BotStatus(bot_id, bot_id, control, beat, up, None)


def test_verdict() -> None:
    pools = (PoolRow("trading_db", "c2_user", 1, 0),)
    assert verdict(status(bots=(bot("a"),)), pools, ()) == ("nominal", ())
    assert verdict(status(bots=(bot("a", control="paused"),)), pools, ()) == ("nominal", ())
    assert verdict(status(bots=(bot("a", beat=500),)), pools, ()) == ("degraded", ("a heartbeat 500s old",))
    assert verdict(status(), None, (SyncRow("a", "failed", None, 0),)) == (
        "degraded", ("last sync of a failed", "PgBouncer console unreadable"))
    assert verdict(status(), (PoolRow("trading_db", "x", 5, 3),), ())[1] == ("PgBouncer: 3 client(s) waiting",)
    level, reasons = verdict(status(bots=(bot("a", up=False, beat=None),), services=()), pools, ())
    assert level == "critical"
    assert reasons == ("listener not reporting", "a stream down", "trade_sync not reporting", "a heartbeat missing")
    assert verdict(status(db=False, redis=False), pools, ())[1] == ("database unreachable", "Redis unreachable")


def test_the_kill_report_says_what_is_left() -> None:
    clean = KillOutcome("a", FlattenOutcome("a", 1, (), ()), Leftovers("a", (), 0))
    nokey = KillOutcome("b", None, None)
    asked = KillOutcome("b", None, None, asked=1)
    assert format_kill(KillReport(("b",), (asked,))).splitlines()[1] == (
        "b: paused; C2 holds no API key for it: the bot was asked to close with its own key (not verified here)")
    stuck = KillOutcome("c", FlattenOutcome("c", 0, (), ("BTCUSDT: 110007 not enough",)),
                        Leftovers("c", (("BTCUSDT", "Buy", Decimal("0.5")),), 2))
    assert format_kill(KillReport(("a",), (clean,))).startswith("Kill switch done: every bot paused, nothing left")
    text = format_kill(KillReport(("a", "b", "c"), (clean, nokey, stuck)))
    assert text.splitlines() == [
        "Kill switch done, but NOT everything is closed or paused:",
        "a: paused, 1 order(s) cancelled, 0 position(s) closed",
        "b: paused; C2 holds no API key for it: no bot process heard the request to close",
        "c: paused, 0 order(s) cancelled, 0 position(s) closed; FAILED: BTCUSDT: 110007 not enough; "
        "STILL OPEN: BTCUSDT Buy 0.5; 2 order(s)"]
    text = format_kill(KillReport((), (clean,), "OperationalError: connection refused"))
    assert text.splitlines() == [
        "Kill switch done, but NOT everything is closed or paused:",
        "a: NOT paused, 1 order(s) cancelled, 0 position(s) closed",
        "The pause failed (OperationalError: connection refused): send /pause all when the database and Redis are back."]
