"""backfill against the simulated venue, the real listener, PostgreSQL via PgBouncer and Redis."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from shared.bybit.parse_rows import parse_execution
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack
from tests.support.trade_sync_checks import differences, expected_row, stored_rows


def run_ranges(stack: TestStack, kind: str = "backfill") -> dict[str, tuple[datetime, datetime]]:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        rows = conn.execute("SELECT DISTINCT ON (bot_id) bot_id, range_start, range_end FROM trading.sync_runs "
                            "WHERE kind = %s ORDER BY bot_id, started_at DESC", (kind,)).fetchall()
    return {b: (s, e) for b, s, e in rows}


async def venue_expected(venue: VenueProcess, ranges: dict[str, tuple[datetime, datetime]],
                         symbol: str | None = None) -> dict[str, dict[str, Any]]:
    """The venue's own history of each bot within the run's range, as trading.fills must hold it."""
    expected: dict[str, dict[str, Any]] = {}
    async with VenueAdmin(venue.admin_url) as admin:
        for bot_id, (start, end) in ranges.items():
            for raw in await admin.executions(h.api_key_of(bot_id)):
                e = parse_execution(raw, "linear")
                if start <= e.exec_time < end and (symbol is None or e.symbol == symbol):
                    expected[e.exec_id] = expected_row(bot_id, raw)
    return expected


async def test_backfill_equals_the_venue_history_field_by_field(listener: h.Listener, env: dict[str, str],
                                                                 venue: VenueProcess, clean_state: TestStack) -> None:
    first = h.run_cli(["backfill", "--months", "3", "--json"], env)
    assert first.returncode == 0, first.stderr[-2000:]
    ranges = run_ranges(clean_state)
    assert set(ranges) == {b for b, *_ in h.ACCOUNTS}
    expected = await venue_expected(venue, ranges)
    owner = clean_state.db.dsn("owner", direct=True)
    stored = stored_rows(owner)
    assert differences(expected, stored) == []

    kinds = {r["exec_type"] for r in expected.values()}
    assert {"Trade", "Funding"} <= kinds  # funding rows are recorded too, as what they are
    with psycopg.connect(owner) as conn:
        trades = conn.execute("SELECT count(*) FROM trading.fills WHERE exec_type = 'Trade'").fetchone()
    assert trades is not None and trades[0] == sum(1 for r in expected.values() if r["exec_type"] == "Trade")

    per_bot = {o["bot_id"]: o for o in first.json()}
    for bot_id, *_ in h.ACCOUNTS:
        n = sum(1 for r in expected.values() if r["bot_id"] == bot_id)
        assert per_bot[bot_id]["status"] == "ok"
        assert per_bot[bot_id]["fetched"] == n
        assert per_bot[bot_id]["inserted"] == n  # the database was empty
        assert per_bot[bot_id]["already_present"] == 0

    second = h.run_cli(["backfill", "--months", "3", "--json"], env)
    assert second.returncode == 0, second.stderr[-2000:]
    for o in second.json():
        assert o["status"] == "ok"
        assert o["windows_resumed"] == 0  # the previous job finished: everything is checked again
        assert o["inserted"] == 0
        assert o["already_present"] == o["fetched"] == per_bot[o["bot_id"]]["fetched"]
    assert stored_rows(owner) == stored


async def test_backfill_of_one_bot_and_symbol_touches_nothing_else(listener: h.Listener, env: dict[str, str],
                                                                    venue: VenueProcess,
                                                                    clean_state: TestStack) -> None:
    res = h.run_cli(["backfill", "--months", "3", "--bot", "lxalgo_001", "--symbol", "ETHUSDT", "--json"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    [outcome] = res.json()
    assert outcome["bot_id"] == "lxalgo_001"
    expected = await venue_expected(venue, run_ranges(clean_state), symbol="ETHUSDT")
    assert expected and outcome["fetched"] == len(expected)
    assert differences(expected, stored_rows(clean_state.db.dsn("owner", direct=True))) == []


async def test_backfill_rides_out_rate_limits_and_server_errors(listener: h.Listener, env: dict[str, str],
                                                                 venue: VenueProcess, clean_state: TestStack) -> None:
    async with VenueAdmin(venue.admin_url) as admin:
        await admin.rate_limit(4.0, api_key=h.api_key_of("shortseller_001"))
        await admin.http_5xx(3.0, status=503, api_key=h.api_key_of("lxalgo_001"))
        res = h.run_cli(["backfill", "--months", "3", "--json"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    by_bot = {o["bot_id"]: o for o in res.json()}
    assert by_bot["shortseller_001"]["requests"] > by_bot["shortseller_001"]["pages"]  # it was refused, and waited
    assert by_bot["lxalgo_001"]["requests"] > by_bot["lxalgo_001"]["pages"]
    expected = await venue_expected(venue, run_ranges(clean_state))
    assert differences(expected, stored_rows(clean_state.db.dsn("owner", direct=True))) == []
