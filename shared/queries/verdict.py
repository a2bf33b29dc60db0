"""The situation report's verdict (pure): nominal, degraded or critical, and why.

Critical: the record or the bots' view of the market is at risk (database or Redis unreachable, the
listener silent, a bot's private stream down). Degraded: something needs a look but nothing is
being lost yet (a bot's heartbeat stale, trade_sync silent or its last run not ok, PgBouncer
clients waiting or its console unreadable, a bot's risk guard tripped or its kill switch on). Paused bots are a decision, not a fault: not counted.
"""
from __future__ import annotations

from datetime import datetime

from shared.contracts import HEARTBEAT_PREFIX, TRADE_SYNC_HEARTBEAT_KEY, listener_heartbeat_key
from shared.queries.results import GuardState, PoolRow, StatusReport, SyncRow

BOT_STALE_S = 120.0
UNHEALTHY_SYNC = ("failed", "partial", "interrupted")


def guard_state(bot_id: str, saved: object, now: datetime) -> GuardState:
    """The `_risk` state a bot's RiskGate saves (strategies/runtime/risk `to_state`) -> what is in force."""
    if not isinstance(saved, dict):
        return GuardState(bot_id, ("unreadable state",), False)
    tripped = []
    for name, t in sorted((saved.get("tripped") or {}).items()):
        until = t.get("until") if isinstance(t, dict) else None
        if until is None or datetime.fromisoformat(until) > now:
            tripped.append(name)
    return GuardState(bot_id, tuple(tripped), saved.get("kill_switch") is not None)


def verdict(status: StatusReport, pools: tuple[PoolRow, ...] | None,
            last_sync: tuple[SyncRow, ...], guards: tuple[GuardState, ...] = ()) -> tuple[str, tuple[str, ...]]:
    critical: list[str] = []
    degraded: list[str] = []
    for g in guards:
        if g.kill_switch:
            degraded.append(f"{g.bot_id} kill switch on")
        if g.tripped:
            degraded.append(f"{g.bot_id} guard tripped: {', '.join(g.tripped)}")
    if not status.database_ok:
        critical.append("database unreachable")
    if not status.redis_ok:
        critical.append("Redis unreachable")
    if status.redis_ok:
        names = [h.name for h in status.services if h.age_s is not None]
        # a heartbeat's name is its key without HEARTBEAT_PREFIX
        listener_beat = listener_heartbeat_key("").removeprefix(HEARTBEAT_PREFIX)
        if not any(n.startswith(listener_beat) for n in names):
            critical.append("listener not reporting")
        if not any(n == TRADE_SYNC_HEARTBEAT_KEY.removeprefix(HEARTBEAT_PREFIX) for n in names):
            degraded.append("trade_sync not reporting")
    for b in status.bots:
        if b.connection_up is False:
            critical.append(f"{b.bot_id} stream down")
        if b.control in ("active", "paused") and (b.heartbeat_age_s is None or b.heartbeat_age_s > BOT_STALE_S):
            degraded.append(f"{b.bot_id} heartbeat " + ("missing" if b.heartbeat_age_s is None
                                                          else f"{b.heartbeat_age_s:.0f}s old"))
    for s in last_sync:
        if s.status in UNHEALTHY_SYNC:
            degraded.append(f"last sync of {s.bot_id} {s.status}")
    if pools is None:
        degraded.append("PgBouncer console unreadable")
    else:
        waiting = sum(p.waiting for p in pools)
        if waiting:
            degraded.append(f"PgBouncer: {waiting} client(s) waiting")
    if critical:
        return "critical", tuple(critical + degraded)
    if degraded:
        return "degraded", tuple(degraded)
    return "nominal", ()
