"""The operators' summaries: quick status, completed trades, situation report (typed results only;
transports format them). PnL reads apply the queued fills first, like every PnL report."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.contracts import RISK_STATE_KEY
from shared.queries.reports import Reports
from shared.queries.results import GuardState, PoolRow, QuickReport, Sitrep, SyncRow, TradeRow
from shared.queries.verdict import guard_state, verdict
from shared.settings import DatabaseSettings

ZERO = Decimal(0)
_TRADES_SQL = """
SELECT trade_id, bot_id, symbol, entry_side, entry_price, entry_qty, entry_time, entry_reason, exit_price,
       exit_qty, exit_time, exit_reason, gross_pnl, net_pnl, pnl_pct, total_commission, holding_duration_seconds
  FROM trading.completed_trades_newest(%(bot)s::text, %(limit)s::integer)
 ORDER BY exit_time DESC, trade_id DESC LIMIT %(limit)s"""
_LAST_SYNC_SQL = """
SELECT DISTINCT ON (bot_id) bot_id, status, finished_at, missing_found
  FROM trading.sync_runs WHERE kind = 'sync' ORDER BY bot_id, id DESC"""
_GUARDS_SQL = "SELECT bot_id, value FROM trading.strategy_state WHERE key = %s ORDER BY bot_id"


def pgbouncer_console_dsn(db: DatabaseSettings) -> str:
    """PgBouncer's console (SHOW POOLS) as the c2 role, one of its `stats_users`."""
    return db.dsn("c2").replace(f"dbname={db.postgres_db} ", "dbname=pgbouncer ", 1)


class Ops:
    def __init__(self, pool: AsyncConnectionPool, reports: Reports, console_dsn: str | None = None) -> None:
        self._pool = pool
        self._reports = reports
        self._console_dsn = console_dsn

    async def trades(self, limit: int, bot_id: str | None = None) -> list[TradeRow]:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT trading.pnl_refresh()")
            await conn.commit()
            rows = await (await conn.execute(_TRADES_SQL, {"bot": bot_id, "limit": limit})).fetchall()
        return [TradeRow(*r) for r in rows]

    async def quick(self, now: datetime | None = None) -> QuickReport:
        now = now or datetime.now(timezone.utc)
        balances = tuple(await self._reports.balances())
        today = await self._reports.analytics("today", now=now)
        positions = tuple(await self._reports.positions())
        return QuickReport(
            at=now, balances=balances, total_equity=sum((b.equity or ZERO for b in balances), ZERO),
            trips_won=today.trips.wins, trips_lost=today.trips.losses, net_today=today.totals.net,
            unrealised=today.unrealised, positions=positions)

    async def pools(self) -> tuple[PoolRow, ...] | None:
        if self._console_dsn is None:
            return None
        try:
            async with await psycopg.AsyncConnection.connect(
                    self._console_dsn, autocommit=True, cursor_factory=psycopg.AsyncClientCursor) as conn:
                cur = await conn.execute("SHOW POOLS")
                names = [d.name for d in cur.description or ()]
                rows = [dict(zip(names, r)) for r in await cur.fetchall()]
        except Exception:  # noqa: BLE001 - reported as unreadable, never fails the report
            return None
        return tuple(PoolRow(str(r["database"]), str(r["user"]), int(r["cl_active"]), int(r["cl_waiting"]))
                     for r in rows if r["database"] != "pgbouncer")

    async def sitrep(self, now: datetime | None = None) -> Sitrep:
        now = now or datetime.now(timezone.utc)
        status = await self._reports.status(now)
        last_sync: tuple[SyncRow, ...] = ()
        guards: tuple[GuardState, ...] = ()
        net_today: Decimal | None = None
        positions, unrealised = 0, ZERO
        if status.database_ok and status.redis_ok:
            try:
                async with self._pool.connection() as conn:
                    last_sync = tuple(SyncRow(*r) for r in await (await conn.execute(_LAST_SYNC_SQL)).fetchall())
                    guard_rows = await (await conn.execute(_GUARDS_SQL, (RISK_STATE_KEY,))).fetchall()
                    guards = tuple(guard_state(bot, value, now) for bot, value in guard_rows)
                net_today = (await self._reports.analytics("today", now=now)).totals.net
            except Exception:  # noqa: BLE001 - an outage since the status probe: the verdict says so
                pass
        if status.redis_ok:
            open_positions = await self._reports.positions()
            positions = len(open_positions)
            unrealised = sum((p.unrealised or ZERO for p in open_positions), ZERO)
        pools = await self.pools()
        level, reasons = verdict(status, pools, last_sync, guards)
        return Sitrep(status, pools, last_sync, positions, unrealised, net_today, level, reasons, guards)
