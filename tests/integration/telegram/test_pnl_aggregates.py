"""The PnL aggregates equal a replay of all fills in Python, whatever order and batching the fills
arrive in through the listener's write path (out-of-order backfill included), and whenever the
queue of new fills is applied (`trading.pnl_refresh()`, migration 0032): between batches, while
batches are being written, or only at the end."""
from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from decimal import Decimal

import psycopg
import pytest

from shared.analytics.books import daily, replay
from shared.analytics.fills import LedgerFill
from tests.integration.telegram.randomfills import random_history
from tests.integration.telegram.writer import listener_writer
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration
TOL = Decimal("1e-12")


def _expected(fills: list[LedgerFill]) -> tuple[dict, dict, dict]:
    """Per (bot, symbol, day): (trades, volume, realised, fees, funding, trips, wins, losses)."""
    per_pair: dict[tuple[str, str], list[LedgerFill]] = defaultdict(list)
    for f in fills:
        per_pair[(f.bot_id, f.symbol)].append(f)
    days, trips, opens = {}, {}, {}
    for pair, pair_fills in per_pair.items():
        books = replay(pair_fills)
        for d in daily(books):
            days[pair + (d.day,)] = (d.totals.trades, d.totals.volume, d.totals.realised, d.totals.fees,
                                     d.totals.funding, d.trips.count, d.trips.wins, d.trips.losses)
        trips[pair] = sorted((t.closed_at, t.opened_at, t.net) for t in books.trips)
        opens[pair] = next(((p.qty, p.open_cost) for p in books.open_positions), (Decimal(0), Decimal(0)))
    return days, trips, opens


def _refresh(stack: TestStack) -> int:
    """What a reader does first: apply the queued fills (as c2_user, through PgBouncer)."""
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        return conn.execute("SELECT trading.pnl_refresh()").fetchone()[0]


def _pending(stack: TestStack) -> int:
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        return conn.execute("SELECT COALESCE(sum(fill_rows), 0) FROM trading.pnl_pending").fetchone()[0]


def _actual(stack: TestStack) -> tuple[dict, dict, dict]:
    _refresh(stack)
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None) as conn:
        rows = conn.execute("""
            SELECT bot_id, symbol, day, trades, volume,
                   cash + open_cost_eod - COALESCE(LAG(open_cost_eod) OVER (PARTITION BY bot_id, symbol ORDER BY day), 0),
                   fees, funding, trips, wins, losses
            FROM trading.pnl_daily""").fetchall()
        days = {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}
        trips: dict = defaultdict(list)
        for b, s, c, o, n in conn.execute("SELECT bot_id, symbol, closed_at, opened_at, net FROM trading.round_trips"):
            trips[(b, s)].append((c, o, n))
        opens = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT bot_id, symbol, qty, open_cost FROM trading.pnl_state")}
    return days, {k: sorted(v) for k, v in trips.items()}, opens


def _assert_same(stack: TestStack, fills: list[LedgerFill]) -> None:
    exp_days, exp_trips, exp_opens = _expected(fills)
    days, trips, opens = _actual(stack)
    assert set(days) == set(exp_days)
    for key, exp in exp_days.items():
        got = days[key]
        assert (got[0], got[1], got[3], got[4], got[5], got[6], got[7]) == (
            exp[0], exp[1], exp[3], exp[4], exp[5], exp[6], exp[7]), key
        assert abs(got[2] - exp[2]) < TOL, key
    assert set(k for k, v in trips.items() if v) == set(k for k, v in exp_trips.items() if v)
    for pair, exp in exp_trips.items():
        got = trips.get(pair, [])
        assert [(c, o) for c, o, _ in got] == [(c, o) for c, o, _ in exp], pair
        assert all(abs(g[2] - e[2]) < TOL for g, e in zip(got, exp)), pair
    for pair, (qty, cost) in exp_opens.items():
        assert opens[pair][0] == qty
        assert abs(opens[pair][1] - cost) < TOL


async def test_in_order_writes_match_a_full_replay(clean_state: TestStack) -> None:
    fills = sorted(random_history(1, 400), key=lambda f: f.sort_key)
    async with listener_writer(clean_state) as writer:
        for i in range(0, len(fills), 37):
            await writer.write(fills[i:i + 37])
            if i % 111 == 0:
                _assert_same(clean_state, fills[:i + 37])
    _assert_same(clean_state, fills)


async def test_writes_only_queue_and_a_refresh_applies_each_fill_once(clean_state: TestStack) -> None:
    fills = sorted(random_history(5, 300), key=lambda f: f.sort_key)
    async with listener_writer(clean_state) as writer:
        await writer.write(fills[:150])
        await writer.write(fills[:150])  # duplicates are not inserted, so not queued either
        await writer.write(fills[150:])
    with psycopg.connect(clean_state.db.dsn("c2"), prepare_threshold=None) as conn:
        assert conn.execute("SELECT count(*) FROM trading.pnl_daily").fetchone()[0] == 0
    assert _pending(clean_state) == len(fills)
    assert _refresh(clean_state) == len(fills)
    assert _pending(clean_state) == 0
    assert _refresh(clean_state) == 0
    _assert_same(clean_state, fills)


async def test_refreshes_racing_the_writer_match_a_full_replay(clean_state: TestStack) -> None:
    """Refreshes on other connections while out-of-order batches commit: a replay may see fills
    committed after its queue was taken; the result is still a full replay, with sums counted once."""
    fills = random_history(6, 600)
    random.Random(6).shuffle(fills)
    done = asyncio.Event()

    async def refresher() -> int:
        runs = 0
        while not done.is_set():
            await asyncio.to_thread(_refresh, clean_state)
            runs += 1
        return runs

    task = asyncio.create_task(refresher())
    async with listener_writer(clean_state) as writer:
        for i in range(0, len(fills), 20):
            await writer.write(fills[i:i + 20])
    done.set()
    assert await task > 1
    _assert_same(clean_state, fills)


async def test_out_of_order_backfill_matches_a_full_replay(clean_state: TestStack) -> None:
    fills = random_history(2, 400)
    rnd = random.Random(2)
    rnd.shuffle(fills)
    async with listener_writer(clean_state) as writer:
        i = 0
        while i < len(fills):
            size = rnd.randint(1, 60)
            await writer.write(fills[i:i + size])
            i += size
            if rnd.random() < 0.3:
                _assert_same(clean_state, fills[:i])
        # A replayed batch (duplicates) changes nothing.
        await writer.write(fills[:50])
    _assert_same(clean_state, fills)


async def test_newest_first_backfill_like_the_rest_api_matches(clean_state: TestStack) -> None:
    fills = sorted(random_history(3, 300), key=lambda f: f.sort_key, reverse=True)
    async with listener_writer(clean_state) as writer:
        for i in range(0, len(fills), 50):
            await writer.write(fills[i:i + 50])
    _assert_same(clean_state, fills)


@pytest.mark.parametrize("applied_before", [True, False], ids=["applied", "still-queued"])
async def test_owner_corrections_and_deletes_rebuild_the_pair(clean_state: TestStack, applied_before: bool) -> None:
    fills = random_history(4, 200)
    async with listener_writer(clean_state) as writer:
        await writer.write(fills)
    if applied_before:
        _refresh(clean_state)
    gone = {f.exec_id for f in fills[::7]}
    changed = fills[3]
    with psycopg.connect(clean_state.db.dsn("owner", direct=True), autocommit=True) as conn:
        conn.execute("DELETE FROM trading.fills WHERE exec_id = ANY(%s)", (list(gone),))
        conn.execute("UPDATE trading.fills SET exec_qty = exec_qty + 1 WHERE exec_id = %s", (changed.exec_id,))
        conn.execute("UPDATE trading.fills SET close_reason = 'x' WHERE exec_id = %s", (fills[5].exec_id,))
    from dataclasses import replace
    kept = [replace(f, exec_qty=f.exec_qty + 1) if f.exec_id == changed.exec_id else f
            for f in fills if f.exec_id not in gone]
    _assert_same(clean_state, kept)
