"""The real PTB application against a local Bot API server: updates in, Bot API calls out, for an
admin, a viewer and a stranger."""
from __future__ import annotations

import io
import json
from decimal import Decimal

import matplotlib.image
import pytest

from services.telegram_c2.formatting import money
from shared.analytics.books import daily, replay
from shared.analytics.metrics import performance, sum_totals
from shared.redis_client import redis_for
from tests.integration.telegram.harness import ADMIN, STRANGER, VIEWER, C2Harness, next_message
from tests.integration.telegram.randomfills import random_history
from tests.integration.telegram.writer import listener_writer
from tests.unit.analytics.fillgen import fill

pytestmark = pytest.mark.integration
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_admin_and_viewer_read_status_and_help(c2: C2Harness) -> None:
    reply = await c2.ask(ADMIN, "/status")
    assert "Database: ok" in reply.text and "Redis: ok" in reply.text
    assert "momentum_001 (Momentum): active" in reply.text
    assert "telegram_c2:main" in reply.text  # its own heartbeat is listed among the services
    reply = await c2.ask(VIEWER, "/start")
    assert reply.text.startswith("Connected as viewer.")
    assert "/analytics" in reply.text


async def test_a_stranger_gets_no_answer_and_the_attempt_is_audited(c2: C2Harness) -> None:
    c2.api.send_command(STRANGER, "/status")
    c2.api.send_command(STRANGER, "/pause all")
    # Updates are handled in order: once the admin's later command is answered, both of the
    # stranger's were handled.
    await c2.ask(ADMIN, "/help")
    assert c2.api.calls_to("sendMessage", STRANGER) == []
    rows = c2.owner_sql("SELECT user_id, role, command, args, result FROM trading.audit_log ORDER BY id")
    assert rows == [(STRANGER, "stranger", "status", "", "denied"), (STRANGER, "stranger", "pause", "all", "denied")]
    assert c2.owner_sql("SELECT DISTINCT status FROM trading.bots") == [("active",)]


async def test_analytics_report_matches_an_independent_replay(c2: C2Harness) -> None:
    fills = random_history(11, 300, bots=("lxalgo_001", "momentum_001", "shortseller_001"), days=3)
    async with listener_writer(c2.stack) as writer:
        await writer.write(fills[150:])
        await writer.write(fills[:150])  # an older batch arriving late
    reply = await c2.ask(VIEWER, "/analytics all")
    books = replay(fills)
    totals = sum_totals(d.totals for d in daily(books))
    wins = sum(1 for t in books.trips if t.net > 0)
    assert f"Fills: {totals.trades:,}" in reply.text
    assert f"Net PnL: {money(totals.net, signed=True)}" in reply.text
    assert f"Volume: {money(totals.volume)} USDT" in reply.text
    assert f"{len(books.trips)} round trips, win rate {(Decimal(wins) / len(books.trips) * 100).quantize(Decimal('0.1'))}%" in reply.text
    for bot_id in ("lxalgo_001", "momentum_001", "shortseller_001"):
        bot_net = sum_totals(d.totals for d in daily(replay([f for f in fills if f.bot_id == bot_id]))).net
        assert f"({bot_id}):" in reply.text and f"net {money(bot_net, signed=True)}" in reply.text


async def test_performance_sends_metrics_and_a_real_png(c2: C2Harness) -> None:
    fills = [
        fill(1, "Buy", "1", "100", "0.1", minutes=0), fill(2, "Sell", "1", "110", "0.1", minutes=60),
        fill(3, "Sell", "2", "50", minutes=1440), fill(4, "Buy", "2", "60", minutes=1500),
        fill(5, "Buy", "1", "10", minutes=4320), fill(6, "Sell", "1", "15", minutes=4350),
    ]
    async with listener_writer(c2.stack) as writer:
        await writer.write(fills)
    mark = len(c2.api.calls)
    reply = await c2.ask(ADMIN, "/performance momentum")
    expected = performance(daily(replay(fills)))
    assert "Performance: momentum_001" in reply.text
    assert f"Net PnL: {money(expected.totals.net, signed=True)}" in reply.text
    assert "3 round trips, win rate 66.7%" in reply.text
    assert f"Max drawdown: {money(expected.max_drawdown.amount)}" in reply.text
    assert f"Sharpe (daily, annualised): {expected.sharpe.quantize(Decimal('0.01'))}" in reply.text
    photo = await c2.api.wait_for("sendPhoto", lambda c: int(c.params["chat_id"]) == ADMIN, after=mark)
    png = photo.files["photo"]
    assert png.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] == 400 and image.shape[1] == 800


async def test_bad_input_gets_one_short_clear_reply(c2: C2Harness) -> None:
    cases = {
        "/fills -5": "The number of fills must be positive.",
        "/fills abc": "Unknown bot 'abc'.",
        "/daily abc": "Unknown bot or number of days 'abc'.",
        "/daily 0": "The number of days must be positive.",
        "/daily 1000": "At most 90 days.",
        "/positions nosuchbot": "Unknown bot 'nosuchbot'.",
        "/positions x';DROP(trading.fills);--": "Unknown bot. Known bots:",
        "/fills 3 <b>momentum</b>": "Unknown bot. Known bots:",
        "/positions x' OR '1'='1": "Too many arguments.",
        "/analytics " + "a" * 40: "Argument too long (at most 32 characters).",
        "/analytics forever": "Unknown bot or period 'forever'. Bots: alpha, bravo, charlie",
        "/fills 1 2 3 4": "Too many arguments.",
        "/nosuchcommand": "Unknown command.",
    }
    for command, expected in cases.items():
        reply = await c2.ask(VIEWER, command)
        assert reply.text.startswith(expected), (command, reply.text)
        assert len(reply.text) < 200
    assert c2.owner_sql("SELECT count(*) FROM trading.fills") == [(0,)]


async def test_viewer_may_not_control(c2: C2Harness) -> None:
    reply = await c2.ask(VIEWER, "/pause all")
    assert reply.text == "Not allowed: control commands are for admins only."
    assert c2.owner_sql("SELECT DISTINCT status FROM trading.bots") == [("active",)]
    assert c2.owner_sql("SELECT role, command, result FROM trading.audit_log") == [("viewer", "pause", "denied")]


async def test_pause_and_resume_set_the_database_redis_and_announce(c2: C2Harness) -> None:
    platform = redis_for(c2.stack.redis, 0)
    pubsub = platform.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("control_channel")
    try:
        reply = await c2.ask(ADMIN, "/pause momentum_001")
        assert reply.text == "Paused: momentum_001."
        assert c2.owner_sql("SELECT bot_id, status FROM trading.bots ORDER BY bot_id") == [
            ("lxalgo_001", "active"), ("momentum_001", "paused"), ("shortseller_001", "active")]
        control = json.loads(await platform.get("control:momentum_001"))
        assert (control["status"], control["by"]) == ("paused", f"telegram:{ADMIN}")
        msg = await next_message(pubsub)
        assert json.loads(msg["data"])["command"] == "pause"

        reply = await c2.ask(ADMIN, "/resume all")
        assert reply.text == "Resumed: shortseller_001, lxalgo_001, momentum_001."
        assert c2.owner_sql("SELECT DISTINCT status FROM trading.bots") == [("active",)]
        assert json.loads(await platform.get("control:momentum_001"))["status"] == "active"
        reply = await c2.ask(ADMIN, "/pause")
        assert reply.text == "Usage: /pause <bot|all>"
    finally:
        await pubsub.aclose()
        await platform.aclose()
    rows = c2.owner_sql("SELECT user_id, role, command, args, result FROM trading.audit_log ORDER BY id")
    assert rows == [(ADMIN, "admin", "pause", "momentum_001", "ok"), (ADMIN, "admin", "resume", "all", "ok"),
                    (ADMIN, "admin", "pause", "", "rejected")]


async def test_flatten_only_after_confirmation(c2: C2Harness) -> None:
    platform = redis_for(c2.stack.redis, 0)
    pubsub = platform.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("control_channel")
    try:
        ask = await c2.ask(ADMIN, "/flatten lxalgo_001")
        buttons = ask.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Yes, flatten lxalgo_001", "Cancel"]
        assert await next_message(pubsub, 0.3) is None  # nothing happens before the tap

        # A viewer tapping the admin's button is refused by the same gate.
        mark = len(c2.api.calls)
        c2.api.press_button(VIEWER, ask, buttons[0]["callback_data"])
        refused = await c2.api.wait_for("answerCallbackQuery", after=mark)
        assert refused.params["text"] == "Admins only."

        mark = len(c2.api.calls)
        c2.api.press_button(ADMIN, ask, buttons[0]["callback_data"])
        edited = await c2.api.wait_for("editMessageText", after=mark)
        assert edited.text.startswith("Flatten of lxalgo_001: paused")
        assert edited.text == ("Flatten of lxalgo_001: paused. Not verified: trade_sync has not answered within 1s; "
                               "the request stays queued, check /positions.")  # none runs here: the request stays queued
        queued = await platform.xrange("control:flatten_requests")
        assert [(f["bot_id"], f["by"]) for _id, f in queued] == [("lxalgo_001", f"telegram:{ADMIN}")]
        announced = [json.loads((await next_message(pubsub))["data"]) for _ in range(2)]
        assert [(m["bot_id"], m["command"]) for m in announced] == [("lxalgo_001", "pause"), ("lxalgo_001", "flatten")]

        # The same button cannot be used twice; a cancelled request does nothing.
        mark = len(c2.api.calls)
        c2.api.press_button(ADMIN, ask, buttons[0]["callback_data"])
        again = await c2.api.wait_for("answerCallbackQuery", after=mark)
        assert again.params["text"] == "This confirmation has expired."
        ask2 = await c2.ask(ADMIN, "/flatten momentum_001")
        mark = len(c2.api.calls)
        c2.api.press_button(ADMIN, ask2, ask2.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"])
        cancelled = await c2.api.wait_for("editMessageText", after=mark)
        assert cancelled.text == "Flatten of momentum_001 cancelled."
        assert await next_message(pubsub, 0.3) is None
    finally:
        await pubsub.aclose()
        await platform.aclose()
    rows = c2.owner_sql("SELECT role, command, result FROM trading.audit_log ORDER BY id")
    assert rows == [("admin", "flatten", "confirm_requested"), ("viewer", "flatten", "denied"),
                    ("admin", "flatten", "incomplete"), ("admin", "flatten", "expired"),
                    ("admin", "flatten", "confirm_requested"), ("admin", "flatten", "cancelled")]


async def test_fills_and_positions_and_balance(c2: C2Harness) -> None:
    async with listener_writer(c2.stack) as writer:
        await writer.write([fill(1, "Buy", "0.5", "42000", "1.5", bot_id="shortseller_001"),
                            fill(2, "Sell", "0.25", "43000", "0.8", bot_id="shortseller_001")])
    r = redis_for(c2.stack.redis, 0)
    await r.set("position:shortseller_001:BTCUSDT", json.dumps({
        "size": "0.25", "side": "Buy", "avg_price": "42000", "unrealized_pnl": "250.5", "mark_price": "43002",
        "liq_price": "30000", "updated_at": "2026-03-01T09:03:00Z"}))
    await r.aclose()
    reply = await c2.ask(VIEWER, "/fills 5 shortseller")
    lines = reply.text.splitlines()
    assert lines[0] == "Last 2 fills (shortseller_001):"
    assert "shortseller_001 Sell 0.25 BTCUSDT @ 43000 fee 0.8" in lines[1]
    reply = await c2.ask(VIEWER, "/positions")
    assert "shortseller_001 BTCUSDT Buy 0.25 @ 42000, mark 43002, uPnL +250.50, liq 30000" in reply.text
    reply = await c2.ask(VIEWER, "/balance")
    assert "shortseller_001: no wallet snapshot yet" in reply.text
