"""Per-bot state of the record, computed once for every transport (CLI table, JSON, Telegram) (IO)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shared.bots import BOTS
from services.trade_sync.store import Store


@dataclass(frozen=True)
class SyncBotStatus:
    bot_id: str
    fills: int = 0
    trades: int = 0
    first_fill: datetime | None = None
    last_fill: datetime | None = None
    last_sync_at: datetime | None = None
    last_sync_status: str | None = None
    last_sync_missing: int = 0
    last_sync_recovered: int = 0
    last_sync_error: str | None = None
    gaps_found_total: int = 0
    recovered_total: int = 0
    drift_found: int = 0
    drift_repaired: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    last_backfill_at: datetime | None = None
    last_backfill_status: str | None = None
    last_backfill_months: int | None = None
    last_backfill_inserted: int = 0
    last_backfill_already_present: int = 0

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


_FILLS = ("SELECT bot_id, count(*) AS fills, count(*) FILTER (WHERE exec_type = 'Trade') AS trades, "
          "min(exec_time) AS first_fill, max(exec_time) AS last_fill FROM trading.fills GROUP BY bot_id")
_LAST = ("SELECT DISTINCT ON (bot_id) bot_id, started_at, status, missing_found, recovered, error, drift_found, "
         "drift_repaired, drift, months, inserted, already_present FROM trading.sync_runs WHERE kind = %s "
         "ORDER BY bot_id, started_at DESC, id DESC")
_TOTALS = ("SELECT bot_id, sum(missing_found)::bigint AS gaps, sum(recovered)::bigint AS recovered "
           "FROM trading.sync_runs WHERE kind = 'sync' GROUP BY bot_id")


async def bot_statuses(store: Store) -> list[SyncBotStatus]:
    fills = {r["bot_id"]: r for r in await store.query(_FILLS)}
    syncs = {r["bot_id"]: r for r in await store.query(_LAST, ("sync",))}
    backfills = {r["bot_id"]: r for r in await store.query(_LAST, ("backfill",))}
    totals = {r["bot_id"]: r for r in await store.query(_TOTALS)}
    bots = list(BOTS) + sorted((set(fills) | set(syncs) | set(backfills)) - set(BOTS))
    out = []
    for bot_id in bots:
        f, s, b, t = fills.get(bot_id, {}), syncs.get(bot_id), backfills.get(bot_id), totals.get(bot_id, {})
        out.append(SyncBotStatus(
            bot_id=bot_id, fills=f.get("fills", 0), trades=f.get("trades", 0), first_fill=f.get("first_fill"),
            last_fill=f.get("last_fill"),
            last_sync_at=s["started_at"] if s else None, last_sync_status=s["status"] if s else None,
            last_sync_missing=s["missing_found"] if s else 0, last_sync_recovered=s["recovered"] if s else 0,
            last_sync_error=s["error"] if s else None,
            gaps_found_total=int(t.get("gaps") or 0), recovered_total=int(t.get("recovered") or 0),
            drift_found=s["drift_found"] if s else 0, drift_repaired=s["drift_repaired"] if s else 0,
            drift=list(s["drift"]) if s else [],
            last_backfill_at=b["started_at"] if b else None, last_backfill_status=b["status"] if b else None,
            last_backfill_months=b["months"] if b else None, last_backfill_inserted=b["inserted"] if b else 0,
            last_backfill_already_present=b["already_present"] if b else 0,
        ))
    return out
