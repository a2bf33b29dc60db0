"""/trades (and the psql view trading.completed_trades), /quick, /sitrep, aliases, and the bad
input of /analytics, /daily and /trades: through the local Bot API server as admin, viewer and
stranger."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.telegram_c2.formatting import money
from shared.analytics.books import daily, replay
from shared.analytics.metrics import sum_totals
from shared.redis_client import redis_for
from tests.integration.telegram.harness import ADMIN, STRANGER, VIEWER, C2Harness
from tests.integration.telegram.randomfills import random_history
from tests.integration.telegram.writer import listener_writer
from tests.unit.analytics.fillgen import fill

pytestmark = pytest.mark.integration
VIEW_SQL = """SELECT trade_id, bot_id, symbol, entry_side, entry_price, entry_qty, entry_time, entry_reason, exit_price,
                     exit_qty, exit_time, exit_reason, gross_pnl, net_pnl, pnl_pct, total_commission,
                     holding_duration_seconds FROM trading.completed_trades"""


async def handled(c2: C2Harness) -> None:
    await c2.ask(ADMIN, "/help")


async def test_completed_trades_view_and_trades_command(c2: C2Harness) -> None:
    fills = [
        fill(1, "Buy", "1", "100", "0.1", minutes=0), fill(2, "Buy", "1", "110", "0.1", minutes=10),
        fill(3, "Sell", "2", "120", "0.2", minutes=60),  # long 2 @ 105 -> 120, take profit
        fill(4, "Sell", "1", "50", minutes=1440), fill(5, "Buy", "3", "60", "0.3", minutes=1500),  # short, flipped by a stop
        fill(6, "Sell", "2", "55", minutes=1600),  # the flip's long 2 @ 60 closed @ 55
    ]
    tags = {"e0003": "tp", "e0005": "sl", "e0006": "flatten"}
    async with listener_writer(c2.stack) as writer:
        await writer.write(fills, tags)
    reply = await c2.ask(VIEWER, "/trades charlie 5")
    lines = reply.text.splitlines()
    assert lines[0] == "Last 3 completed trades (momentum_001 (charlie)), newest first:"
    assert "momentum_001 BTCUSDT long 2: 03-02 10:00 @ 60 -> 03-02 11:40 @ 55, exit flatten, net -10.20 (-8.50%), held 100m" in lines[1]
    assert "short 1: 03-02 09:00 @ 50 -> 03-02 10:00 @ 60, exit stop_loss, net -10.10 (-20.20%), held 60m" in lines[2]
    assert "long 2: 03-01 09:00 @ 105 -> 03-01 10:00 @ 120, exit take_profit, net +29.60 (+14.10%), held 60m" in lines[3]
    rows = c2.owner_sql(VIEW_SQL + " ORDER BY exit_time")
    first = rows[0]
    assert first[1:6] == ("momentum_001", "BTCUSDT", "Buy", Decimal("105"), Decimal("2"))
    assert (first[7], first[8], first[9], first[11]) == ("entry", Decimal("120"), Decimal("2"), "take_profit")
    assert (first[12], first[13], first[15], first[16]) == (Decimal("30"), Decimal("29.6"), Decimal("0.4"), Decimal("3600"))
    # The flip fill (e0005) closes the short (1) and opens the long (2): its fee split 0.1 / 0.2.
    assert [(r[3], r[5], r[9], r[11]) for r in rows[1:]] == [("Sell", 1, 1, "stop_loss"), ("Buy", 2, 2, "flatten")]
    assert [r[15] for r in rows[1:]] == [Decimal("0.1"), Decimal("0.2")]
    # Viewers read as the c2 role: the view is granted to it.
    assert "no completed trades" not in reply.text.lower()


async def test_the_view_agrees_with_an_independent_replay(c2: C2Harness) -> None:
    fills = random_history(5, 400, bots=("lxalgo_001", "momentum_001"), days=3)
    async with listener_writer(c2.stack) as writer:
        await writer.write(fills[200:])
        await writer.write(fills[:200])
    reply = await c2.ask(ADMIN, "/trades 50")
    rows = c2.owner_sql(VIEW_SQL + " ORDER BY bot_id, symbol, exit_time, trade_id")
    trips = sorted(replay(fills).trips, key=lambda t: (t.bot_id, t.symbol, t.closed_at))
    assert len(rows) == len(trips) > 20
    assert reply.text.startswith(f"Last {min(50, len(trips))} completed trades (all bots)")
    for row, trip in zip(rows, trips):
        assert (row[1], row[2], row[6], row[10]) == (trip.bot_id, trip.symbol, trip.opened_at, trip.closed_at)
        assert row[3] == ("Buy" if trip.direction == "long" else "Sell")
        assert row[12] == trip.realised and abs(row[13] - trip.net) < Decimal("1e-12")  # fee split: 20 vs 28 digits
        assert row[5] == row[9]  # flat to flat: as much closed as opened
        sign = 1 if trip.direction == "long" else -1
        assert abs((row[8] - row[4]) * row[5] * sign - trip.realised) < Decimal("1e-6")
    # /trades reads only the fills since each pair's last flat point before the trips it shows, and
    # finds the same rows as the whole view.
    newest = VIEW_SQL.replace("trading.completed_trades", "trading.completed_trades_newest(%s, %s)")
    for bot_id in (None, "lxalgo_001", "momentum_001"):
        for n in (1, 2, 5, 13, 40):
            want = c2.owner_sql(VIEW_SQL + " WHERE %s::text IS NULL OR bot_id = %s "
                                "ORDER BY exit_time DESC, trade_id DESC LIMIT %s", (bot_id, bot_id, n))
            got = c2.owner_sql(newest + " ORDER BY exit_time DESC, trade_id DESC LIMIT %s", (bot_id, n, n))
            assert got == want, (bot_id, n)


async def test_quick_and_aliases(c2: C2Harness) -> None:
    fills = [fill(1, "Buy", "1", "100", minutes=0, bot_id="lxalgo_001"), fill(2, "Sell", "1", "90", minutes=5, bot_id="lxalgo_001")]
    async with listener_writer(c2.stack) as writer:
        await writer.write(fills)
    c2.owner_sql("""INSERT INTO trading.wallet_snapshots (bot_id, snapshot_time, total_equity)
                    VALUES ('lxalgo_001', now(), 1000.5), ('momentum_001', now(), 2000)""")
    r = redis_for(c2.stack.redis, 1)
    await r.set("position:lxalgo_001:ETHUSDT", json.dumps({"size": "2", "side": "Sell", "avg_price": "3000",
                                                            "unrealized_pnl": "-12.5", "mark_price": "3006"}))
    await r.aclose()
    for user in (ADMIN, VIEWER):
        reply = await c2.ask(user, "/quick")
        assert "  lxalgo_001 (bravo): 1,000.50" in reply.text
        assert "  shortseller_001 (alpha): no wallet snapshot yet" in reply.text
        assert "  total: 3,000.50" in reply.text
        assert "Open positions: 1, unrealised -12.50" in reply.text
        assert "  lxalgo_001 ETHUSDT Sell 2 @ 3000" in reply.text
    # The same bot by alias, id and short name, in every command that names one.
    texts = {(await c2.ask(VIEWER, f"/positions {name}")).text for name in ("bravo", "BRAVO", "lxalgo_001", "lxalgo")}
    assert len(texts) == 1 and "lxalgo_001 ETHUSDT Sell 2" in texts.pop()
    analytics = await c2.ask(VIEWER, "/analytics bravo all")
    assert analytics.text.startswith("Analytics: all, lxalgo_001")
    expected = sum_totals(d.totals for d in daily(replay(fills))).net
    assert f"Net PnL: {money(expected, signed=True)}" in analytics.text
    for user in (ADMIN, VIEWER):
        assert (await c2.ask(user, "/analytics all bravo")).text == analytics.text
        assert (await c2.ask(user, "/analytics 14 charlie")).text.startswith("Analytics: 14d, momentum_001")
        assert (await c2.ask(user, "/daily alpha 3")).text == "No activity in that period (shortseller_001)."
        assert (await c2.ask(user, "/daily 90 bravo")).text == "No activity in that period (lxalgo_001)."  # fills of March
    assert (await c2.ask(VIEWER, "/fills 5 bravo")).text.startswith("Last 2 fills (lxalgo_001)")
    assert (await c2.ask(ADMIN, "/pause charlie")).text == "Paused: momentum_001."


async def test_bad_input_of_the_new_commands_gets_one_short_reply(c2: C2Harness) -> None:
    cases = {
        "/analytics delta": "Unknown bot or period 'delta'.",
        "/analytics 0": "The number of days must be positive.",
        "/analytics 999999": "At most 365 days.",
        "/analytics 999999d": "At most 365 days.",
        "/analytics alpha bravo": "Give one bot at most.",
        "/analytics 7d 30d": "Give one period at most.",
        "/analytics alpha 7d extra": "Too many arguments.",
        "/daily delta": "Unknown bot or number of days 'delta'.",
        "/daily 0": "The number of days must be positive.",
        "/daily 999999": "At most 90 days.",
        "/daily alpha 3 extra": "Too many arguments.",
        "/trades delta": "Unknown bot or number of trades 'delta'.",
        "/trades 0": "The number of trades must be positive.",
        "/trades 999999": "At most 50 trades.",
        "/trades alpha 3 extra": "Too many arguments.",
        "/quick now": "Too many arguments.",
        "/sitrep now": "Too many arguments.",
        "/cc now": "Too many arguments.",
        "/positions delta": "Unknown bot 'delta'. Known bots: shortseller_001 (alpha)",
    }
    for command, expected in cases.items():
        mark = len(c2.api.calls)
        reply = await c2.ask(VIEWER, command)
        assert reply.text.startswith(expected), (command, reply.text)
        assert len(reply.text) < 200
        assert len(c2.api.calls_to("sendMessage", VIEWER)) == len(
            [c for c in c2.api.calls[:mark] if c.method == "sendMessage" and int(c.params["chat_id"]) == VIEWER]) + 1


async def test_sitrep_verdict(c2: C2Harness) -> None:
    reply = await c2.ask(VIEWER, "/sitrep")
    # Nothing but C2 runs here: no listener, no trade_sync.
    assert reply.text.splitlines()[-1].startswith("Verdict: CRITICAL (listener not reporting; trade_sync not reporting")
    assert "PgBouncer pools: c2_user" in reply.text
    r = redis_for(c2.stack.redis, 0)
    now = c2.owner_sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")[0][0]
    for name in ("websocket_listener:public", "websocket_listener:lxalgo_001", "trade_sync:scheduler"):
        await r.set(f"heartbeat:{name}", now)
    await r.hset("listener:connections", mapping={b: json.dumps({"up": True})
                                                 for b in ("shortseller_001", "lxalgo_001", "momentum_001")})
    reply = await c2.ask(ADMIN, "/sitrep")
    assert reply.text.splitlines()[-1] == "Verdict: NOMINAL"
    await r.hset("listener:connections", "momentum_001", json.dumps({"up": False}))
    c2.owner_sql("UPDATE trading.bots SET last_heartbeat = now() - interval '10 minutes' WHERE bot_id = 'lxalgo_001'")
    reply = await c2.ask(ADMIN, "/sitrep")
    assert reply.text.splitlines()[-1].startswith("Verdict: CRITICAL (momentum_001 stream down; lxalgo_001 heartbeat")
    await r.hset("listener:connections", "momentum_001", json.dumps({"up": True}))
    reply = await c2.ask(ADMIN, "/sitrep")
    assert reply.text.splitlines()[-1].startswith("Verdict: DEGRADED (lxalgo_001 heartbeat 6")
    assert "momentum_001 (charlie): active, heartbeat" in reply.text
    await r.aclose()


async def test_strangers_get_nothing_from_the_new_commands(c2: C2Harness) -> None:
    for command in ("/quick", "/trades", "/sitrep", "/cc", "/analytics alpha", "/daily bravo 3", "/killswitch"):
        c2.api.send_command(STRANGER, command)
    await handled(c2)
    assert c2.api.calls_to("sendMessage", STRANGER) == []
    rows = c2.owner_sql("SELECT command, result FROM trading.audit_log WHERE user_id = %s ORDER BY id", (STRANGER,))
    assert rows == [("quick", "denied"), ("trades", "denied"), ("sitrep", "denied"), ("cc", "denied"),
                    ("analytics", "denied"), ("daily", "denied"), ("killswitch", "denied")]
