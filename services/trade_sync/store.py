"""trade_sync's PostgreSQL: its run history and backfill progress (written), fills (read only) (IO)."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.trade_sync.windows import Window, dt_to_ms


@dataclass
class RunTally:
    """What one bot's run did, as it goes; becomes its `trading.sync_runs` row."""

    windows_total: int = 0
    windows_done: int = 0
    windows_resumed: int = 0
    requests: int = 0
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    already_present: int = 0
    rejected: int = 0
    missing_found: int = 0
    recovered: int = 0
    unknown_to_exchange: int = 0
    positions_checked: int = 0
    drift_found: int = 0
    drift_repaired: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TALLY_COLUMNS = [f.name for f in fields(RunTally)]


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    kind: str  # sync | backfill
    trigger: str  # cli | schedule
    bot_id: str
    symbol: str | None
    months: int | None
    job_id: str | None
    range_start: datetime
    range_end: datetime


class Store:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection in autocommit: a lone statement is one round trip (no BEGIN/COMMIT);
        writes that belong together use an explicit `conn.transaction()`."""
        async with self.pool.connection() as conn:
            if not conn.autocommit:
                await conn.set_autocommit(True)
            yield conn

    async def close_interrupted(self, bot_ids: Sequence[str]) -> int:
        """Runs left 'running' by a process that died; only called while holding these bots' locks."""
        async with self._conn() as conn:
            cur = await conn.execute(
                "UPDATE trading.sync_runs SET status = 'interrupted', finished_at = now(), "
                "error = coalesce(error, 'the process stopped before finishing') "
                "WHERE status = 'running' AND bot_id = ANY(%s)", (list(bot_ids),))
            return cur.rowcount

    async def resumable_job(self, bot_id: str, symbol: str | None) -> tuple[str, list[tuple[int, int]]] | None:
        """The job of the latest backfill of this bot and scope if it did not finish, with its completed windows."""
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT job_id::text, status FROM trading.sync_runs WHERE kind = 'backfill' AND bot_id = %s "
                "AND symbol IS NOT DISTINCT FROM %s ORDER BY started_at DESC, id DESC LIMIT 1", (bot_id, symbol))
            row = await cur.fetchone()
            if row is None or row[0] is None or row[1] == "ok":
                return None
            cur = await conn.execute(
                "SELECT window_start, window_end FROM trading.backfill_progress WHERE job_id = %s", (row[0],))
            covered = [(dt_to_ms(s), dt_to_ms(e)) for s, e in await cur.fetchall()]
        return row[0], covered

    async def start_runs(self, specs: Iterable[RunSpec], totals: dict[str, RunTally]) -> None:
        """All bots' rows of one run in one transaction."""
        async with self._conn() as conn, conn.transaction():
            for s in specs:
                t = totals[s.bot_id]
                await conn.execute(
                    "INSERT INTO trading.sync_runs (run_id, kind, trigger, bot_id, symbol, months, job_id, "
                    "range_start, range_end, windows_total, windows_resumed) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (s.run_id, s.kind, s.trigger, s.bot_id, s.symbol, s.months, s.job_id, s.range_start,
                     s.range_end, t.windows_total, t.windows_resumed))

    async def window_done(self, spec: RunSpec, window: Window, pages: int, fetched: int, inserted: int,
                          already_present: int, tally: RunTally) -> None:
        """Record a window whose every row the listener committed, and the run's counters, atomically."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO trading.backfill_progress (job_id, bot_id, symbol, window_start, window_end, run_id, "
                "pages, fetched, inserted, already_present) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (job_id, window_start, window_end) DO NOTHING",
                (spec.job_id, spec.bot_id, spec.symbol or "", window.start, window.end, spec.run_id, pages, fetched,
                 inserted, already_present))
            await self._write_tally(conn, spec, tally)

    async def _write_tally(self, conn: Any, spec: RunSpec, tally: RunTally, status: str | None = None,
                           error: str | None = None) -> None:
        values = tally.as_dict()
        values["drift"] = json.dumps(values["drift"])
        sets = ", ".join(f"{c} = %({c})s" for c in _TALLY_COLUMNS)
        extra = ", status = %(status)s, finished_at = now(), error = %(error)s" if status else ""
        await conn.execute(
            f"UPDATE trading.sync_runs SET {sets}{extra} WHERE run_id = %(run_id)s AND bot_id = %(bot_id)s "
            "AND status = 'running'",
            {**values, "status": status, "error": error, "run_id": spec.run_id, "bot_id": spec.bot_id})

    async def finish_run(self, spec: RunSpec, tally: RunTally, status: str, error: str | None = None) -> None:
        async with self._conn() as conn, conn.transaction():
            await self._write_tally(conn, spec, tally, status, error)

    async def present_exec_ids(self, exec_ids: Sequence[str]) -> set[str]:
        if not exec_ids:
            return set()
        async with self._conn() as conn:
            cur = await conn.execute("SELECT exec_id FROM trading.fills WHERE exec_id = ANY(%s)", (list(exec_ids),))
            return {r[0] for r in await cur.fetchall()}

    async def exec_ids_between(self, bot_id: str, start: datetime, end: datetime, symbol: str | None) -> set[str]:
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT exec_id FROM trading.fills WHERE bot_id = %s AND exec_time >= %s AND exec_time < %s "
                "AND (%s::text IS NULL OR symbol = %s)", (bot_id, start, end, symbol, symbol))
            return {r[0] for r in await cur.fetchall()}

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()
