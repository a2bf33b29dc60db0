"""Pure parts of the operators' commands: aliases, windows, argument order, the verdict, the kill
switch's report."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from services.telegram_c2.args import BadArgs, parse_analytics_args, parse_daily_args, parse_trades_args
from services.telegram_c2.formatting_ops import format_kill
from shared.bots import resolve_bot
from shared.queries.flatten_requests import BadRequest, FlattenResult, parse_request, parse_result
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
        with pytest.raises(BadArgs):
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


def _result(bot: str, *, cancelled: int = 0, closed: tuple = (), errors: tuple = (), left: tuple = (),
            orders: int = 0, left_error: str | None = None, status: str = "done") -> FlattenResult:
    return FlattenResult(f"r-{bot}", bot, status, cancelled, closed, errors, left, orders, left_error, 1,
                         "2026-12-06T00:00:00Z")


def test_the_kill_report_says_what_is_left() -> None:
    clean = KillOutcome("a", _result("a", cancelled=1, closed=(("BTCUSDT", "Buy", Decimal("0.1")),)))
    silent = KillOutcome("b", None)
    unsent = KillOutcome("b", None, "ConnectionError: refused")
    stuck = KillOutcome("c", _result("c", errors=("BTCUSDT: 110007 not enough",),
                                     left=(("BTCUSDT", "Buy", Decimal("0.5")),), orders=2))
    expired = KillOutcome("c", _result("c", status="expired", errors=("request 400s old (limit 300s): not executed",)))
    assert format_kill(KillReport(("a",), (clean,), waited_s=20)).startswith(
        "Kill switch done: every bot paused, nothing left")
    text = format_kill(KillReport(("a", "b", "c"), (clean, silent, stuck), waited_s=20))
    assert text.splitlines() == [
        "Kill switch done, but NOT everything is closed or paused:",
        "a: paused, 1 order(s) cancelled, 1 position(s) closed",
        "b: paused; trade_sync has not answered within 20s: NOT verified (the request stays queued; check /positions)",
        "c: paused, 0 order(s) cancelled, 0 position(s) closed; STILL OPEN: BTCUSDT Buy 0.5; 2 order(s); "
        "FAILED: BTCUSDT: 110007 not enough"]
    assert format_kill(KillReport(("b", "c"), (unsent, expired))).splitlines()[1:] == [
        "b: paused; the close request could not be sent (ConnectionError: refused)",
        "c: paused; NOT executed (expired): request 400s old (limit 300s): not executed"]
    text = format_kill(KillReport((), (clean,), "OperationalError: connection refused"))
    assert text.splitlines() == [
        "Kill switch done, but NOT everything is closed or paused:",
        "a: NOT paused, 1 order(s) cancelled, 1 position(s) closed",
        "The pause failed (OperationalError: connection refused): send /pause all when the database and Redis are back."]


def test_flatten_requests_and_results_parse() -> None:
    r = _result("a", cancelled=2, closed=(("BTCUSDT", "Sell", Decimal("0.020")),), errors=("x",),
                left=(("ETHUSDT", "Buy", Decimal("1.5")),), orders=1, left_error="could not check: 503")
    assert parse_result(r.as_hash()) == r and not r.clean
    assert parse_result(_result("b").as_hash()).clean
    with pytest.raises(ValueError, match="unreadable flatten result"):
        parse_result({"request_id": "x"})
    req = parse_request("1-0", {"request_id": "q", "bot_id": "lxalgo_001", "by": "telegram:1",
                                "at": "2026-12-06T10:00:00Z"})
    assert (req.request_id, req.bot_id, req.at.isoformat()) == ("q", "lxalgo_001", "2026-12-06T10:00:00+00:00")
    for fields, why in (({"bot_id": "a", "at": "2026-12-06T10:00:00Z"}, "missing request_id"),
                        ({"request_id": "q", "bot_id": "a", "at": "yesterday"}, "bad time"),
                        ({"request_id": "q", "bot_id": "a", "at": "2026-12-06T10:00:00"}, "time without a zone")):
        with pytest.raises(BadRequest, match=why):
            parse_request("1-0", fields)


def test_guard_state_from_the_runtimes_saved_risk_state() -> None:
    from shared.queries.verdict import guard_state

    now = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)
    saved = {"tripped": {"day_loss": {"since": "2026-12-06T09:00:00+00:00", "until": "2026-12-07T00:00:00+00:00"},
                         "week_loss": {"since": "2026-12-01T09:00:00+00:00", "until": "2026-12-06T11:59:59+00:00"},
                         "drawdown": {"since": "2026-11-01T00:00:00+00:00", "until": None}},
             "kill_switch": None}
    g = guard_state("lxalgo_001", saved, now)
    assert (g.tripped, g.kill_switch, g.ok) == (("day_loss", "drawdown"), False, False)  # week_loss has ended
    assert guard_state("a", {"tripped": {}, "kill_switch": None}, now).ok
    killed = guard_state("a", {"tripped": {}, "kill_switch": {"since": "2026-12-06T10:00:00+00:00", "reason": "x"}}, now)
    assert killed.kill_switch and not killed.ok
    assert guard_state("a", "garbage", now).tripped == ("unreadable state",)
    pools = (PoolRow("trading_db", "listener_user", 1, 0),)
    assert verdict(status(bots=(bot("lxalgo_001"),)), pools, (), (g, killed)) == (
        "degraded", ("lxalgo_001 guard tripped: day_loss, drawdown", "a kill switch on"))
