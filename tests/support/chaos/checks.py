"""What the chaos run proves afterwards, each against the venue's own list of executions (the truth):
the ledger (lost, duplicated, field by field), the announcements, the positions, the PnL aggregates."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from shared.analytics.books import daily, replay
from shared.analytics.fills import LedgerFill
from shared.bybit.fields import ms_to_datetime
from tests.integration.listener.helpers import field_differences
from tests.support.stack import TestStack

TOL = Decimal("1e-12")


@dataclass
class LedgerCheck:
    venue: int = 0
    stored: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # stored, not on the venue
    field_diffs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unknown or self.field_diffs)


def stored_rows(stack: TestStack) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        cur = conn.execute("SELECT * FROM trading.fills ORDER BY exec_time, seq")
        names = [d.name for d in cur.description or []]
        for row in cur:
            rec = dict(zip(names, row))
            out[rec["bot_id"]].append(rec)
    return out


def stored_ids(stack: TestStack) -> Counter[str]:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        return Counter(r[0] for r in conn.execute("SELECT exec_id FROM trading.fills"))


def check_ledger(truth: dict[str, list[dict[str, Any]]], rows: dict[str, list[dict[str, Any]]]) -> LedgerCheck:
    res = LedgerCheck()
    for bot_id, venue_rows in truth.items():
        mine = rows.get(bot_id, [])
        ids = Counter(r["exec_id"] for r in mine)
        venue_ids = {v["execId"] for v in venue_rows}
        res.venue += len(venue_rows)
        res.stored += len(mine)
        res.lost += sorted(venue_ids - set(ids))
        res.duplicated += sorted(i for i, n in ids.items() if n > 1)
        res.unknown += sorted(set(ids) - venue_ids)
        res.field_diffs += [d for d in field_differences(venue_rows, mine, bot_id)
                            if not d.endswith((": missing", "stored but unknown to the venue"))]
    for bot_id in set(rows) - set(truth):
        res.unknown += [r["exec_id"] for r in rows[bot_id]]
    return res


@dataclass
class FeedCheck:
    name: str
    fills: int = 0
    announced: int = 0  # distinct fills announced at least once
    entries: int = 0  # announcements, repeats included
    missing: list[str] = field(default_factory=list)
    wrong_bot: int = 0

    @property
    def repeats(self) -> int:
        return self.entries - self.announced

    @property
    def coverage(self) -> float:
        return self.announced / self.fills if self.fills else 1.0


def check_feed(name: str, truth: dict[str, list[dict[str, Any]]], seen: dict[str, Counter[str]]) -> FeedCheck:
    res = FeedCheck(name)
    for bot_id, venue_rows in truth.items():
        got = seen.get(bot_id, Counter())
        ids = {v["execId"] for v in venue_rows}
        res.fills += len(ids)
        res.announced += len(ids & set(got))
        res.entries += sum(n for i, n in got.items() if i in ids)
        res.wrong_bot += sum(1 for i in got if i not in ids)
        res.missing += sorted(ids - set(got))
    return res


def venue_fill(bot_id: str, v: dict[str, Any]) -> LedgerFill:
    return LedgerFill(bot_id=bot_id, symbol=v["symbol"], exec_id=v["execId"], exec_type=v["execType"], side=v["side"],
                exec_price=Decimal(v["execPrice"]), exec_qty=Decimal(v["execQty"]),
                exec_time=ms_to_datetime(int(v["execTime"])), commission=Decimal(v["execFee"] or "0"),
                seq=int(v["seq"]) if v.get("seq") not in (None, "") else None)


def expected_pnl(fills: list[LedgerFill]) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, list[Any]], dict[Any, Any]]:
    """Per (bot, symbol, day): (trades, volume, realised, fees, funding, trips, wins, losses); round trips;
    open (qty, cost): an independent replay in Python (shared/analytics, average cost)."""
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


def stored_pnl(stack: TestStack) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, list[Any]], dict[Any, Any]]:
    """The aggregates, after `trading.pnl_refresh()` applied what is queued (as a reader does, via PgBouncer)."""
    with psycopg.connect(stack.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        conn.execute("SELECT trading.pnl_refresh()")
        rows = conn.execute("""
            SELECT bot_id, symbol, day, trades, volume,
                   cash + open_cost_eod - COALESCE(LAG(open_cost_eod) OVER (PARTITION BY bot_id, symbol ORDER BY day), 0),
                   fees, funding, trips, wins, losses
            FROM trading.pnl_daily""").fetchall()
        days = {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}
        trips: dict[Any, list[Any]] = defaultdict(list)
        for b, s, c, o, n in conn.execute("SELECT bot_id, symbol, closed_at, opened_at, net FROM trading.round_trips"):
            trips[(b, s)].append((c, o, n))
        opens = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT bot_id, symbol, qty, open_cost FROM trading.pnl_state")}
    return days, {k: sorted(v) for k, v in trips.items()}, opens


def pnl_differences(stack: TestStack, truth: dict[str, list[dict[str, Any]]]) -> tuple[list[str], int, int]:
    """Differences between the stored aggregates and the replay of the venue's executions; also the number
    of (bot, symbol, day) rows and of round trips compared."""
    fills = [venue_fill(b, v) for b, rows in truth.items() for v in rows]
    exp_days, exp_trips, exp_opens = expected_pnl(fills)
    days, trips, opens = stored_pnl(stack)
    out: list[str] = []
    for key in sorted(set(days) | set(exp_days), key=str):
        got, exp = days.get(key), exp_days.get(key)
        if got is None or exp is None:
            out.append(f"pnl_daily {key}: stored {got} replay {exp}")
            continue
        exact = (got[0], got[1], got[3], got[4], got[5], got[6], got[7])
        if exact != (exp[0], exp[1], exp[3], exp[4], exp[5], exp[6], exp[7]) or abs(got[2] - exp[2]) >= TOL:
            out.append(f"pnl_daily {key}: stored {got} replay {exp}")
    for pair in sorted(set(trips) | set(exp_trips)):
        got_t, exp_t = trips.get(pair, []), exp_trips.get(pair, [])
        if len(got_t) != len(exp_t) or any((g[0], g[1]) != (e[0], e[1]) or abs(g[2] - e[2]) >= TOL
                                           for g, e in zip(got_t, exp_t)):
            out.append(f"round_trips {pair}: stored {len(got_t)} trips, replay {len(exp_t)}")
    for pair, (qty, cost) in exp_opens.items():
        got_o = opens.get(pair, (Decimal(0), Decimal(0)))
        if got_o[0] != qty or abs(got_o[1] - cost) >= TOL:
            out.append(f"pnl_state {pair}: stored {got_o} replay {(qty, cost)}")
    return out, len(exp_days), sum(len(v) for v in exp_trips.values())
