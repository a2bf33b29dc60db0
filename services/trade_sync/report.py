"""Plain-text tables and JSON for the operator (pure: records in, text out)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.trade_sync.backfill import BotOutcome
from services.trade_sync.status import SyncBotStatus


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _t(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def backfill_table(outcomes: Sequence[BotOutcome]) -> str:
    rows = [(o.bot_id, o.status, f"{o.tally.windows_done}/{o.tally.windows_total}"
             + (f" (+{o.tally.windows_resumed} before)" if o.tally.windows_resumed else ""),
             o.tally.pages, o.tally.fetched, o.tally.inserted, o.tally.already_present, o.tally.rejected,
             f"{o.seconds:.1f}s") for o in outcomes]
    return table(("bot", "result", "windows", "pages", "fetched", "inserted", "already present", "rejected",
                  "time"), rows)


def sync_table(outcomes: Sequence[BotOutcome], skipped: Sequence[str] = ()) -> str:
    rows = []
    for o in outcomes:
        t = o.tally
        drift = ", ".join(f"{d['symbol']}:{d['kind']}" for d in t.drift) or "none"
        rows.append((o.bot_id, o.status, t.fetched, t.missing_found, t.recovered, t.unknown_to_exchange,
                     t.positions_checked, drift, f"{o.seconds:.1f}s"))
    text = table(("bot", "result", "exchange execs", "missing", "recovered", "unknown to exchange",
                  "positions", "drift", "time"), rows)
    extra = [f"{b}: skipped (another run holds its lock)" for b in skipped]
    return text + ("\n" + "\n".join(extra) if extra else "")


def failure_lines(outcomes: Sequence[BotOutcome]) -> list[str]:
    """For stderr: one line per bot that did not end well (its error already names the bot)."""
    return [o.error if o.error.startswith(o.bot_id) else f"{o.bot_id}: {o.error}"
            for o in outcomes if o.error and o.status != "ok"]


def outcome_json(o: BotOutcome) -> dict[str, Any]:
    return {"bot_id": o.bot_id, "status": o.status, "seconds": round(o.seconds, 3), "error": o.error,
            "fetch_seconds": None if o.fetch_seconds is None else round(o.fetch_seconds, 3),
            **o.tally.as_dict()}


def status_table(statuses: Sequence[SyncBotStatus]) -> str:
    rows = []
    for s in statuses:
        sync = f"{_t(s.last_sync_at)} {s.last_sync_status}" if s.last_sync_at else "never"
        last = f"{s.last_sync_missing}/{s.last_sync_recovered}" if s.last_sync_at else "-"
        drift = "none" if not s.drift else ", ".join(f"{d['symbol']}:{d['kind']}" for d in s.drift)
        backfill = (f"{_t(s.last_backfill_at)} {s.last_backfill_status} ({s.last_backfill_months} mo)"
                    if s.last_backfill_at else "never")
        rows.append((s.bot_id, f"{s.fills} ({s.trades} trades)", _t(s.first_fill), _t(s.last_fill), sync, last,
                     f"{s.gaps_found_total}/{s.recovered_total}", drift, backfill))
    return table(("bot", "fills", "first fill (UTC)", "last fill (UTC)", "last sync (UTC)", "gaps/recovered",
                  "all syncs gaps/recovered", "position drift", "last backfill"), rows)
