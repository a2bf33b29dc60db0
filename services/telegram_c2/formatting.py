"""Query results as plain text, for Telegram and the terminal alike (pure).

Plain text (no parse mode): nothing a user or the exchange sends can turn into markup.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from shared.analytics.metrics import TripStats
from shared.queries.results import (
    AnalyticsReport, BalanceRow, ControlResult, DailyReport, ReportFillRow, PerformanceReport, PositionRow,
    StatusReport,
)

CENT = Decimal("0.01")


def money(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    q = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if q == 0:
        q = abs(q)
    return f"{q:+,.2f}" if signed else f"{q:,.2f}"


def qty(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    text = format(value.normalize(), "f")
    return text


def pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def duration(seconds: Decimal | None) -> str:
    return "n/a" if seconds is None else age(float(seconds))


def when(at: datetime | None) -> str:
    return "never" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_status(s: StatusReport) -> str:
    lines = [f"Status at {when(s.at)}",
             f"Database: {'ok' if s.database_ok else 'DOWN'}"
             + (f" ({s.database_ms:.0f} ms)" if s.database_ms is not None else ""),
             f"Redis: {'ok' if s.redis_ok else 'DOWN'}" + (f" ({s.redis_ms:.0f} ms)" if s.redis_ms is not None else ""),
             "", "Services (heartbeat age):"]
    lines += [f"  {h.name}: {age(h.age_s)}" for h in s.services] or ["  none reporting"]
    lines += ["", "Bots:"]
    for b in s.bots:
        conn = "unknown" if b.connection_up is None else ("up" if b.connection_up else "DOWN")
        lines.append(f"  {b.bot_id} ({b.strategy_name}): {b.control}, heartbeat {age(b.heartbeat_age_s)}, "
                     f"stream {conn}, last fill {when(b.last_fill_at)}")
    return "\n".join(lines)


def format_positions(rows: list[PositionRow], bot_id: str | None) -> str:
    scope = bot_id or "all bots"
    if not rows:
        return f"No open positions ({scope})."
    lines = [f"Open positions ({scope}):"]
    total = Decimal(0)
    for p in rows:
        total += p.unrealised or 0
        lines.append(f"{p.bot_id} {p.symbol} {p.side} {qty(p.size)} @ {qty(p.entry)}, mark {qty(p.mark)}, "
                     f"uPnL {money(p.unrealised, signed=True)}, liq {qty(p.liq_price)}")
    lines.append(f"Total unrealised: {money(total, signed=True)}")
    return "\n".join(lines)


def format_balances(rows: list[BalanceRow]) -> str:
    lines = ["Balances (USDT):"]
    for b in rows:
        if b.at is None:
            lines.append(f"{b.bot_id}: no wallet snapshot yet")
        else:
            lines.append(f"{b.bot_id}: equity {money(b.equity)}, available {money(b.available)}, "
                         f"uPnL {money(b.unrealised, signed=True)} (as of {when(b.at)})")
    return "\n".join(lines)


def format_fills(rows: list[ReportFillRow], bot_id: str | None) -> str:
    if not rows:
        return f"No fills ({bot_id or 'all bots'})."
    lines = [f"Last {len(rows)} fills ({bot_id or 'all bots'}):"]
    for f in rows:
        kind = "" if f.exec_type == "Trade" else f" [{f.exec_type}]"
        reason = f" {f.close_reason}" if f.close_reason else ""
        lines.append(f"{f.exec_time:%m-%d %H:%M:%S} {f.bot_id} {f.side} {qty(f.qty)} {f.symbol} @ {qty(f.price)}"
                     f" fee {qty(f.fee)}{kind}{reason}")
    return "\n".join(lines)


def _trips(t: TripStats) -> str:
    pf = "n/a" if t.profit_factor is None else f"{t.profit_factor.quantize(CENT)}"
    return f"{t.count:,} round trips, win rate {pct(t.win_rate)}, profit factor {pf}"


def format_analytics(r: AnalyticsReport) -> str:
    since = "since the first fill" if r.since is None else f"since {r.since.isoformat()} UTC"
    t = r.totals
    lines = [f"Analytics: {r.window}, {r.bot_id or 'all bots'} ({since})",
             f"Fills: {t.trades:,}   Volume: {money(t.volume)} USDT",
             f"Net PnL: {money(t.net, signed=True)} (realised {money(t.realised, signed=True)}, "
             f"fees {money(t.fees)}, funding {money(t.funding)})",
             f"Unrealised now: {money(r.unrealised, signed=True)}",
             _trips(r.trips).capitalize(), "", "By strategy:"]
    lines += [f"  {g.label} ({g.key}): {g.totals.trades:,} fills, net {money(g.totals.net, signed=True)}, "
              f"win rate {pct(g.trips.win_rate)}" for g in r.by_bot] or ["  no fills"]
    lines += ["", "Top symbols by volume:"]
    lines += [f"  {g.key}: {g.totals.trades:,} fills, volume {money(g.totals.volume)}, "
              f"net {money(g.totals.net, signed=True)}" for g in r.top_symbols] or ["  none"]
    return "\n".join(lines)


def format_performance(r: PerformanceReport) -> str:
    p = r.performance
    dd = p.max_drawdown
    dd_when = f" ({dd.peak_day} to {dd.trough_day})" if dd.trough_day else ""
    sharpe = "n/a" if p.sharpe is None else f"{p.sharpe.quantize(CENT)}"
    return "\n".join([
        f"Performance: {r.bot_id or 'all bots'}",
        f"Net PnL: {money(p.totals.net, signed=True)} (fees {money(p.totals.fees)}, funding {money(p.totals.funding)})",
        f"Unrealised now: {money(r.unrealised, signed=True)}",
        _trips(p.trips).capitalize(),
        f"Max drawdown: {money(dd.amount)}{dd_when}",
        f"Sharpe (daily, annualised): {sharpe}",
        f"Average holding time: {duration(p.trips.avg_holding_s)}",
        f"Days traded: {len(p.equity_curve)}",
    ])


def format_daily(r: DailyReport) -> str:
    if not r.days:
        return f"No activity in that period ({r.bot_id or 'all bots'})."
    lines = [f"Daily PnL ({r.bot_id or 'all bots'}), newest first:"]
    for d in r.days:
        lines.append(f"{d.day.isoformat()}: net {money(d.totals.net, signed=True)}, {d.totals.trades:,} fills, "
                     f"volume {money(d.totals.volume)}, {d.trips.count} trips ({d.trips.wins} won)")
    return "\n".join(lines)


def format_control(r: ControlResult) -> str:
    bots = ", ".join(r.bots)
    if r.command == "flatten":
        extra = " (no bot process is listening right now)" if r.status == "no_listener" else ""
        detail = f" {r.detail[:1].upper()}{r.detail[1:]}." if r.detail else ""
        return f"Flatten of {bots}: paused{extra}.{detail}"
    return f"{'Paused' if r.command == 'pause' else 'Resumed'}: {bots}."
