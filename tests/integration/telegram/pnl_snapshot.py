"""What the PnL aggregates must say in one database snapshot, computed apart from the SQL.

The aggregates count exactly the fills whose queue rows (`trading.pnl_pending`) a refresh has taken:
every fill visible in the snapshot except those of the queue rows still there. A queue row is one
insert statement's fills of one (bot, symbol, UTC day), named by the earliest of them, so a test
that wrote each statement itself (`StatementWriter`) knows which fills a queue row stands for.
`check_snapshot` reads the fills, the queue and the aggregates (and the reports' own queries) in
one REPEATABLE READ transaction and compares them with a replay in Python (`shared.analytics`).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timezone
from decimal import Decimal
from typing import Any

import psycopg

from shared.analytics.books import daily, replay
from shared.analytics.fills import LedgerFill
from shared.queries.reports import _BY_DAY_SQL, _BY_PAIR_SQL

TOL = Decimal("1e-12")
Pair = tuple[str, str]

INSERT_SQL = """
INSERT INTO trading.fills (bot_id, symbol, exec_id, order_id, side, exec_type, exec_price, exec_qty, exec_value,
                           exec_time, commission, seq, source)
SELECT bot_id, symbol, exec_id, 'o-' || exec_id, side, exec_type, exec_price, exec_qty, exec_price * exec_qty,
       exec_time, commission, seq, 'sync'
  FROM jsonb_to_recordset(%s::jsonb) AS x(bot_id text, symbol text, exec_id text, side text, exec_type text,
                                          exec_price numeric, exec_qty numeric, exec_time timestamptz,
                                          commission numeric, seq bigint)
ON CONFLICT (exec_id) DO NOTHING"""


def _day(f: LedgerFill) -> date:
    return f.exec_time.astimezone(timezone.utc).date()


def _json(fills: list[LedgerFill]) -> str:
    return json.dumps([{"bot_id": f.bot_id, "symbol": f.symbol, "exec_id": f.exec_id, "side": f.side,
                        "exec_type": f.exec_type, "exec_price": str(f.exec_price), "exec_qty": str(f.exec_qty),
                        "exec_time": f.exec_time.isoformat(), "commission": str(f.commission), "seq": f.seq}
                       for f in fills])


@dataclass
class StatementWriter:
    """Fills inserted as listener_user, one INSERT statement (one transaction) per `write`, so the
    insert trigger queues each call's fills as the listener's own batches are queued. It remembers
    which statement wrote each fill."""

    statement_of: dict[str, int] = field(default_factory=dict)
    statements: list[list[LedgerFill]] = field(default_factory=list)

    def register(self, fills: list[LedgerFill]) -> int:
        n = len(self.statements)
        self.statements.append(fills)
        for f in fills:
            self.statement_of[f.exec_id] = n
        return n

    async def write(self, conn: psycopg.AsyncConnection[Any], fills: list[LedgerFill]) -> None:
        self.register(fills)
        await conn.execute(INSERT_SQL, (_json(fills),))

    def write_sync(self, conn: psycopg.Connection[Any], fills: list[LedgerFill]) -> None:
        self.register(fills)
        conn.execute(INSERT_SQL, (_json(fills),))

    def queued(self, pending: list[tuple[str, str, date, str]]) -> set[str]:
        """The exec_ids that the queue rows (bot, symbol, day, first_exec_id) stand for."""
        out: set[str] = set()
        for bot, symbol, day, first in pending:
            for f in self.statements[self.statement_of[first]]:
                if (f.bot_id, f.symbol, _day(f)) == (bot, symbol, day):
                    out.add(f.exec_id)
        return out


@dataclass(frozen=True)
class SnapshotResult:
    visible: int
    queued: int
    pairs: int


_FILLS_SQL = """SELECT bot_id, symbol, exec_id, exec_type, side, exec_price, exec_qty, exec_time, commission, seq
                  FROM trading.fills"""


def check_snapshot(conn: psycopg.Connection[Any], writer: StatementWriter) -> SnapshotResult:
    """Compare the aggregates with a replay of the fills they must count, all read in one snapshot.
    `conn` is the owner's (only it may read the queue), not in a transaction."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        fills = [LedgerFill(*r) for r in conn.execute(_FILLS_SQL)]
        pending = [tuple(r) for r in conn.execute(
            "SELECT bot_id, symbol, day, first_exec_id FROM trading.pnl_pending")]
        days = {(r[0], r[1], r[2]): tuple(r[3:]) for r in conn.execute("""
            SELECT bot_id, symbol, day, trades, volume,
                   cash + open_cost_eod - COALESCE(LAG(open_cost_eod) OVER (PARTITION BY bot_id, symbol ORDER BY day), 0),
                   fees, funding, trips, wins, losses
              FROM trading.pnl_daily""")}
        trips: dict[Pair, list[tuple[Any, ...]]] = defaultdict(list)
        for b, s, c, o, n in conn.execute("SELECT bot_id, symbol, closed_at, opened_at, net FROM trading.round_trips"):
            trips[(b, s)].append((c, o, n))
        opens = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT bot_id, symbol, qty, open_cost FROM trading.pnl_state")}
        # The reports' own statements, in the same snapshot.
        by_pair = {(r[0], r[1]): r[2:] for r in conn.execute(_BY_PAIR_SQL, {"bot": None, "since": None})}
        by_day = {r[0]: r[1:] for r in conn.execute(_BY_DAY_SQL, {"bot": None, "since": None, "until": None})}

    queued = writer.queued(pending)  # type: ignore[arg-type]
    applied = [f for f in fills if f.exec_id not in queued]
    per_pair: dict[Pair, list[LedgerFill]] = defaultdict(list)
    for f in applied:
        per_pair[(f.bot_id, f.symbol)].append(f)
    exp_days: dict[tuple[str, str, date], tuple[Any, ...]] = {}
    exp_day_totals: dict[date, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    where = f"{len(fills)} fills visible, {len(queued)} of them queued"
    for pair, pair_fills in per_pair.items():
        books = replay(pair_fills)
        pair_realised = Decimal(0)
        for d in daily(books):
            t = d.totals
            exp_days[pair + (d.day,)] = (t.trades, t.volume, t.realised, t.fees, t.funding,
                                         d.trips.count, d.trips.wins, d.trips.losses)
            pair_realised += t.realised
            exp_day_totals[d.day][0] += t.realised
            exp_day_totals[d.day][1] += t.volume
            exp_day_totals[d.day][2] += d.trips.count
        exp_trips = sorted((t.closed_at, t.opened_at, t.net) for t in books.trips)
        got_trips = sorted(trips.get(pair, []))
        assert [(c, o) for c, o, _ in got_trips] == [(c, o) for c, o, _ in exp_trips], (pair, where)
        assert all(abs(g[2] - e[2]) < TOL for g, e in zip(got_trips, exp_trips)), (pair, where)
        qty, cost = next(((p.qty, p.open_cost) for p in books.open_positions), (Decimal(0), Decimal(0)))
        got_qty, got_cost = opens.get(pair, (Decimal(0), Decimal(0)))
        assert got_qty == qty and abs(got_cost - cost) < TOL, (pair, "open", got_qty, got_cost, qty, cost, where)
        assert abs(by_pair[pair][2] - pair_realised) < TOL, (pair, "report realised", by_pair[pair][2],
                                                             pair_realised, where)
    assert set(days) == set(exp_days), where
    for key, exp in exp_days.items():
        got = days[key]
        assert (got[0], got[1], got[3], got[4], got[5], got[6], got[7]) == (
            exp[0], exp[1], exp[3], exp[4], exp[5], exp[6], exp[7]), (key, got, exp, where)
        assert abs(got[2] - exp[2]) < TOL, (key, "realised", got[2], exp[2], where)
    assert set(by_day) == set(exp_day_totals), where
    for day, (realised, volume, n_trips) in exp_day_totals.items():
        got = by_day[day]
        assert abs(got[2] - realised) < TOL and got[1] == volume and got[5] == n_trips, (day, got, where)
    assert set(trips) <= set(per_pair), where
    assert set(by_pair) == set(per_pair), where
    return SnapshotResult(visible=len(fills), queued=len(queued), pairs=len(per_pair))
