"""Read-side queries for the C2 bot and the terminal, as the `c2` role through PgBouncer.

PnL figures come from `trading.pnl_daily` (migrations 0031 and 0032): a day's realised PnL is its
cash flow plus the change in open cost since the previous day with fills, so any window is a sum
over a few thousand rows however many fills exist. The listener's inserts only queue their fills for
the aggregates; every PnL read first applies that queue (`trading.pnl_refresh()`), so it is exact.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from shared.analytics.metrics import DayPnl, PnlTotals, TripStats, performance, sum_totals, sum_trips
from shared.bots import BOTS, PLATFORM_REDIS_DB
from shared.contracts import HEARTBEAT_PREFIX, LISTENER_CONNECTIONS_KEY, position_key_prefix
from shared.queries.results import (
    AnalyticsReport, BalanceRow, BotStatus, DailyReport, ReportFillRow, GroupPnl, Heartbeat, PerformanceReport,
    PositionRow, StatusReport,
)
from shared.queries.windows import window_start

ZERO = Decimal(0)

_DAILY_CTE = """
WITH d AS (
    SELECT bot_id, symbol, day, trades, volume, fees, funding, trips, wins, losses, gross_win, gross_loss,
           holding_s,
           cash + open_cost_eod
             - COALESCE(LAG(open_cost_eod) OVER (PARTITION BY bot_id, symbol ORDER BY day), 0) AS realised
      FROM trading.pnl_daily
     WHERE (%(bot)s::text IS NULL OR bot_id = %(bot)s)
)
"""
_SUMS = """sum(trades)::bigint, sum(volume), sum(realised), sum(fees), sum(funding), sum(trips)::bigint,
           sum(wins)::bigint, sum(losses)::bigint, sum(gross_win), sum(gross_loss), sum(holding_s)"""
# Per (bot, symbol) over the days from `since` on: realised = the cash flow of those days + the open
# cost now - the open cost at the end of the last day before `since` (no window function needed).
_BY_PAIR_SQL = """
SELECT d.bot_id, d.symbol, sum(d.trades)::bigint, sum(d.volume),
       sum(d.cash) + s.open_cost - COALESCE((
           SELECT p.open_cost_eod FROM trading.pnl_daily p
            WHERE p.bot_id = d.bot_id AND p.symbol = d.symbol AND p.day < %(since)s::date
            ORDER BY p.day DESC LIMIT 1), 0),
       sum(d.fees), sum(d.funding), sum(d.trips)::bigint, sum(d.wins)::bigint, sum(d.losses)::bigint,
       sum(d.gross_win), sum(d.gross_loss), sum(d.holding_s)
  FROM trading.pnl_daily d JOIN trading.pnl_state s ON s.bot_id = d.bot_id AND s.symbol = d.symbol
 WHERE (%(bot)s::text IS NULL OR d.bot_id = %(bot)s) AND (%(since)s::date IS NULL OR d.day >= %(since)s)
 GROUP BY d.bot_id, d.symbol, s.open_cost"""
_BY_DAY_SQL = _DAILY_CTE + f"""
SELECT day, {_SUMS} FROM d
 WHERE (%(since)s::date IS NULL OR day >= %(since)s) AND (%(until)s::date IS NULL OR day <= %(until)s)
 GROUP BY day ORDER BY day"""


def _totals_trips(row: tuple[Any, ...]) -> tuple[PnlTotals, TripStats]:
    trades, volume, realised, fees, funding, trips, wins, losses, gw, gl, hold = row
    return (PnlTotals(int(trades), volume, realised, fees, funding),
            TripStats(int(trips), int(wins), int(losses), gw, gl, hold))


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _age_s(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return max(0.0, (now - at).total_seconds())


class Reports:
    """Every read the transports need. `redis_by_db` holds the platform db and each bot's db."""

    def __init__(self, pool: AsyncConnectionPool, redis_by_db: dict[int, Redis]) -> None:
        self._pool = pool
        self._redis = redis_by_db
        self._platform = redis_by_db[PLATFORM_REDIS_DB]

    async def _rows(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _pnl_rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A read of the PnL aggregates, after applying the fills queued since the last refresh (its
        own committed transaction, so the read that follows sees it and holds no lock)."""
        async with self._pool.connection() as conn:
            await conn.execute("SELECT trading.pnl_refresh()")
            await conn.commit()
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    # --- status --------------------------------------------------------------------------------

    async def status(self, now: datetime | None = None) -> StatusReport:
        now = now or datetime.now(timezone.utc)
        db_ok, db_ms, bots_rows, last_fills = False, None, [], {}
        try:
            t0 = time.perf_counter()
            bots_rows = await self._rows("SELECT bot_id, strategy_name, status, last_heartbeat FROM trading.bots")
            db_ms = (time.perf_counter() - t0) * 1000
            last_fills = dict(await self._rows(
                "SELECT b, (SELECT max(exec_time) FROM trading.fills WHERE bot_id = b) FROM unnest(%s::text[]) AS b",
                (list(BOTS),)))
            db_ok = True
        except Exception:  # noqa: BLE001 - status reports an outage instead of failing
            pass
        redis_ok, redis_ms, services, connections = False, None, [], {}
        try:
            t0 = time.perf_counter()
            await self._platform.ping()
            redis_ms = (time.perf_counter() - t0) * 1000
            keys = sorted([k async for k in self._platform.scan_iter(match=f"{HEARTBEAT_PREFIX}*", count=200)])
            values = await self._platform.mget(keys) if keys else []
            services = [Heartbeat(k.removeprefix(HEARTBEAT_PREFIX), _age_s(v, now)) for k, v in zip(keys, values)]
            connections = {k: json.loads(v) for k, v in (await self._platform.hgetall(LISTENER_CONNECTIONS_KEY)).items()}
            redis_ok = True
        except Exception:  # noqa: BLE001
            pass
        registered = {r[0]: r for r in bots_rows}
        bots = []
        for bot_id, spec in BOTS.items():
            row = registered.get(bot_id)
            conn = connections.get(bot_id)
            bots.append(BotStatus(
                bot_id=bot_id,
                strategy_name=row[1] if row else spec.strategy_name,
                control=row[2] if row else "unregistered",
                heartbeat_age_s=(now - row[3]).total_seconds() if row and row[3] else None,
                connection_up=bool(conn.get("up")) if isinstance(conn, dict) else None,
                last_fill_at=last_fills.get(bot_id),
            ))
        return StatusReport(now, tuple(services), tuple(bots), db_ok, db_ms, redis_ok, redis_ms)

    # --- positions and balances -----------------------------------------------------------------

    async def positions(self, bot_id: str | None = None) -> list[PositionRow]:
        out: list[PositionRow] = []
        for spec in BOTS.values():
            if bot_id is not None and spec.bot_id != bot_id:
                continue
            r = self._redis[spec.redis_db]
            prefix = position_key_prefix(spec.bot_id)
            keys = sorted([k async for k in r.scan_iter(match=prefix + "*", count=200)])
            values = await r.mget(keys) if keys else []
            for key, raw in zip(keys, values):
                if not raw:
                    continue
                d = json.loads(raw)
                size = _dec(d.get("size")) or ZERO
                if size == ZERO:
                    continue
                out.append(PositionRow(
                    bot_id=spec.bot_id, symbol=key.removeprefix(prefix), side=str(d.get("side") or ""),
                    size=abs(size), entry=_dec(d.get("avg_price")), mark=_dec(d.get("mark_price")),
                    unrealised=_dec(d.get("unrealized_pnl")), liq_price=_dec(d.get("liq_price")),
                    updated_at=d.get("updated_at"),
                ))
        return out

    async def balances(self) -> list[BalanceRow]:
        rows = await self._rows("""
            SELECT DISTINCT ON (bot_id) bot_id, total_equity, total_available_balance, total_wallet_balance,
                   total_perp_upl, snapshot_time
              FROM trading.wallet_snapshots ORDER BY bot_id, snapshot_time DESC""")
        by_bot = {r[0]: r for r in rows}
        return [BalanceRow(b, *by_bot[b][1:]) if b in by_bot else BalanceRow(b, None, None, None, None, None)
                for b in BOTS]

    # --- fills ------------------------------------------------------------------------------------

    async def fills(self, limit: int, bot_id: str | None = None) -> list[ReportFillRow]:
        rows = await self._rows("""
            SELECT bot_id, symbol, side, exec_type, exec_price, exec_qty, commission, exec_time, close_reason
              FROM trading.fills WHERE (%(bot)s::text IS NULL OR bot_id = %(bot)s)
             ORDER BY exec_time DESC, id DESC LIMIT %(limit)s""", {"bot": bot_id, "limit": limit})
        return [ReportFillRow(*r) for r in rows]

    # --- PnL -----------------------------------------------------------------------------------------

    async def _unrealised(self, bot_id: str | None) -> Decimal:
        return sum((p.unrealised or ZERO for p in await self.positions(bot_id)), ZERO)

    async def analytics(self, window: str, *, bot_id: str | None = None, now: datetime | None = None,
                        top_n: int = 5) -> AnalyticsReport:
        since = window_start(window, now or datetime.now(timezone.utc))
        rows = await self._pnl_rows(_BY_PAIR_SQL, {"bot": bot_id, "since": since})
        bot_parts: dict[str, list[tuple[PnlTotals, TripStats]]] = defaultdict(list)
        sym_parts: dict[str, list[tuple[PnlTotals, TripStats]]] = defaultdict(list)
        for row in rows:
            part = _totals_trips(row[2:])
            bot_parts[row[0]].append(part)
            sym_parts[row[1]].append(part)

        def group(key: str, label: str, parts: list[tuple[PnlTotals, TripStats]]) -> GroupPnl:
            return GroupPnl(key, label, sum_totals(p[0] for p in parts), sum_trips(p[1] for p in parts))

        by_bot = [group(b, BOTS[b].strategy_name if b in BOTS else b, parts) for b, parts in bot_parts.items()]
        by_bot.sort(key=lambda g: g.key)
        symbols = [group(s, s, parts) for s, parts in sym_parts.items()]
        symbols.sort(key=lambda g: (-g.totals.volume, g.key))
        return AnalyticsReport(
            window=window, since=since,
            totals=sum_totals(g.totals for g in by_bot), trips=sum_trips(g.trips for g in by_bot),
            by_bot=tuple(by_bot), top_symbols=tuple(symbols[:top_n]),
            unrealised=await self._unrealised(bot_id), bot_id=bot_id,
        )

    async def _days(self, bot_id: str | None, since: date | None, until: date | None = None) -> list[DayPnl]:
        rows = await self._pnl_rows(_BY_DAY_SQL, {"bot": bot_id, "since": since, "until": until})
        return [DayPnl(r[0], *_totals_trips(r[1:])) for r in rows]

    async def performance(self, bot_id: str | None = None) -> PerformanceReport:
        days = await self._days(bot_id, None)
        return PerformanceReport(bot_id, performance(days), await self._unrealised(bot_id))

    async def daily(self, n_days: int, bot_id: str | None = None, now: datetime | None = None) -> DailyReport:
        today = window_start("today", now or datetime.now(timezone.utc))
        assert today is not None
        first = date.fromordinal(today.toordinal() - (n_days - 1))
        days = await self._days(bot_id, first, today)
        return DailyReport(bot_id, tuple(reversed(days)))
