"""The operators' summaries as plain text (pure): /quick, /trades, /sitrep, the kill switch."""
from __future__ import annotations

from decimal import Decimal

from services.telegram_c2.formatting import age, duration, money, qty, when
from shared.bots import BOTS
from shared.queries.killswitch import KillOutcome, KillReport
from shared.queries.results import GuardState, QuickReport, Sitrep, TradeRow

VERDICT_MARK = {"nominal": "NOMINAL", "degraded": "DEGRADED", "critical": "CRITICAL"}


def bot_name(bot_id: str) -> str:
    spec = BOTS.get(bot_id)
    return f"{bot_id} ({spec.alias})" if spec and spec.alias else bot_id


def format_quick(r: QuickReport) -> str:
    lines = [f"Quick status at {when(r.at)}", "Equity (USDT):"]
    for b in r.balances:
        lines.append(f"  {bot_name(b.bot_id)}: {money(b.equity) if b.at else 'no wallet snapshot yet'}")
    lines += [f"  total: {money(r.total_equity)}",
              f"Today: {r.trips_won + r.trips_lost} round trips closed, {r.trips_won} won, {r.trips_lost} lost; "
              f"net PnL {money(r.net_today, signed=True)}",
              f"Open positions: {len(r.positions)}, unrealised {money(r.unrealised, signed=True)}"]
    lines += [f"  {p.bot_id} {p.symbol} {p.side} {qty(p.size)} @ {qty(p.entry)}" for p in r.positions]
    return "\n".join(lines)


def price(value: Decimal | None) -> str:
    """An average price, to 6 decimals at most (display only)."""
    return "n/a" if value is None else qty(value.quantize(Decimal("0.000001")))


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value.quantize(Decimal('0.01')):+}%"


def format_trades(rows: list[TradeRow], bot_id: str | None) -> str:
    scope = bot_name(bot_id) if bot_id else "all bots"
    if not rows:
        return f"No completed trades ({scope})."
    lines = [f"Last {len(rows)} completed trades ({scope}), newest first:"]
    for t in rows:
        direction = "long" if t.entry_side == "Buy" else "short"
        lines.append(
            f"#{t.trade_id} {t.bot_id} {t.symbol} {direction} {qty(t.entry_qty)}: "
            f"{t.entry_time:%m-%d %H:%M} @ {price(t.entry_price)} -> {t.exit_time:%m-%d %H:%M} @ {price(t.exit_price)}, "
            f"exit {t.exit_reason or 'n/a'}, net {money(t.net_pnl, signed=True)} ({_pct(t.pnl_pct)}), "
            f"held {duration(t.holding_s)}")
    return "\n".join(lines)


def _guard(g: GuardState | None) -> str:
    if g is None:
        return "none kept"
    if g.ok:
        return "ok"
    return ", ".join((["KILL SWITCH"] if g.kill_switch else []) + [f"TRIPPED {n}" for n in g.tripped])


def format_sitrep(r: Sitrep) -> str:
    s = r.status
    lines = [f"Situation report at {when(s.at)}",
             f"Database: {'ok' if s.database_ok else 'DOWN'}   Redis: {'ok' if s.redis_ok else 'DOWN'}"]
    if r.pools is None:
        lines.append("PgBouncer pools: unreadable")
    else:
        lines.append("PgBouncer pools: " + (", ".join(f"{p.user} {p.active} active/{p.waiting} waiting"
                                                       for p in r.pools) or "none open"))
    lines.append("Services: " + (", ".join(f"{h.name} {age(h.age_s)}" for h in s.services) or "none reporting"))
    syncs = {x.bot_id: x for x in r.last_sync}
    guards = {g.bot_id: g for g in r.guards}
    for b in s.bots:
        stream = "unknown" if b.connection_up is None else ("up" if b.connection_up else "DOWN")
        sync = syncs.get(b.bot_id)
        last = f"{sync.status} {when(sync.finished_at)}" if sync else "never"
        lines.append(f"{bot_name(b.bot_id)}: {b.control}, heartbeat {age(b.heartbeat_age_s)}, stream {stream}, "
                     f"guard {_guard(guards.get(b.bot_id))}, last sync {last}")
    lines.append(f"Open positions: {r.positions}, unrealised {money(r.unrealised, signed=True)}; "
                 f"net PnL today {money(r.net_today, signed=True)}")
    lines.append(f"Verdict: {VERDICT_MARK[r.verdict]}" + (f" ({'; '.join(r.reasons)})" if r.reasons else ""))
    return "\n".join(lines)


def _kill_line(b: KillOutcome, paused: bool, waited_s: float) -> str:
    state = "paused" if paused else "NOT paused"
    if b.request_error is not None:
        return f"{b.bot_id}: {state}; the close request could not be sent ({b.request_error[:150]})"
    r = b.result
    if r is None:
        return (f"{b.bot_id}: {state}; trade_sync has not answered within {waited_s:.0f}s: NOT verified "
                "(the request stays queued; check /positions)")
    if r.status != "done":
        return f"{b.bot_id}: {state}; NOT executed ({r.status}): " + "; ".join(r.errors)[:200]
    parts = [f"{b.bot_id}: {state}, {r.cancelled_orders} order(s) cancelled, {len(r.closed)} position(s) closed"]
    if r.left_error:
        parts.append(f"could not check what is left: {r.left_error[:200]}")
    elif r.left_positions or r.left_orders:
        held = ", ".join(f"{sym} {side} {qty(size)}" for sym, side, size in r.left_positions)
        parts.append(f"STILL OPEN: {held or 'no position'}; {r.left_orders} order(s)")
    if r.errors and not r.clean:
        parts.append("FAILED: " + "; ".join(r.errors)[:200])
    return "; ".join(parts)


def format_kill(r: KillReport) -> str:
    head = ("Kill switch done: every bot paused, nothing left open." if r.clean
            else "Kill switch done, but NOT everything is closed or paused:")
    lines = [head] + [_kill_line(b, b.bot_id in r.paused, r.waited_s) for b in r.bots]
    if r.pause_error:
        lines.append(f"The pause failed ({r.pause_error}): send /pause all when the database and Redis are back.")
    return "\n".join(lines)
