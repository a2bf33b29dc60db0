"""Alerts: new fills (coalesced per burst), and conditions watched on a schedule: a listener
connection silent for more than 60 s, a bot's heartbeat older than 2 minutes, the reconciler finding
missing fills, a bot's drawdown past its limit.

A condition alerts when it starts and when it clears; its state is kept in `trading.alert_state`,
so a restart neither repeats an alert nor forgets that one is firing. Messages go through the
Outbox (paced, retried).
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from services.telegram_c2.config import AlertMode, C2Settings
from services.telegram_c2.formatting import money, qty
from services.telegram_c2.run_cursor import Run, RunCursor, step
from services.telegram_c2.sender import Outbox
from shared.contracts import (FILLS_CHANNEL, LISTENER_CONNECTIONS_KEY, RECONCILER_CURSOR_KEY, bot_heartbeat_alert_key,
                              drawdown_alert_key, listener_alert_key, listener_heartbeat_key)
from shared.queries.reports import Reports

log = structlog.get_logger()
MAX_LINES = 10


def raise_if_cancelling() -> None:
    """Some clients turn a cancellation that hits them mid-read into their own error; a loop that
    retries on errors must still stop when its task is being cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def fill_kind(exec_type: str) -> str:
    return "trade" if exec_type == "Trade" else "funding" if exec_type == "Funding" else "other"


def fill_line(m: dict[str, Any]) -> str:
    kind = "" if m.get("exec_type") == "Trade" else f" [{m.get('exec_type')}]"
    return (f"{m.get('bot_id')} {m.get('side')} {qty(Decimal(str(m.get('exec_qty', '0'))))} {m.get('symbol')} @ "
            f"{qty(Decimal(str(m.get('exec_price', '0'))))} fee {m.get('commission')}{kind}")


def coalesce(messages: list[dict[str, Any]]) -> str:
    """One message for a burst of fills (pure)."""
    if len(messages) == 1:
        return "New fill: " + fill_line(messages[0])
    lines = [f"{len(messages)} new fills:"] + [fill_line(m) for m in messages[:MAX_LINES]]
    if len(messages) > MAX_LINES:
        lines.append(f"... and {len(messages) - MAX_LINES} more (/fills)")
    return "\n".join(lines)


@dataclass(frozen=True)
class Condition:
    key: str
    firing: bool
    text: str  # what to say when it starts (or clears)


class AlertState:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def load(self) -> dict[str, tuple[bool, str | None]]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute("SELECT alert_key, firing, detail FROM trading.alert_state")).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    async def save(self, key: str, firing: bool, detail: str | None) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO trading.alert_state (alert_key, firing, detail, changed_at) VALUES (%s, %s, %s, now())
                   ON CONFLICT (alert_key) DO UPDATE
                   SET firing = EXCLUDED.firing, detail = EXCLUDED.detail, changed_at = now()""",
                (key, firing, detail))


class Alerts:
    def __init__(self, settings: C2Settings, outbox: Outbox, recipients: tuple[int, ...], reports: Reports,
                 pool: AsyncConnectionPool, platform: Redis) -> None:
        self._settings = settings
        self._outbox = outbox
        self._recipients = recipients
        self._reports = reports
        self._pool = pool
        self._platform = platform
        self._state = AlertState(pool)
        self._modes: dict[str, AlertMode] = {"trade": settings.alert_fills_trade,
                                             "funding": settings.alert_fills_funding,
                                             "other": settings.alert_fills_other}

    # --- fills ---------------------------------------------------------------------------------

    async def follow_fills(self) -> None:
        """Subscribe to `fills_channel`; after the first fill of a burst wait `alert_coalesce_s`, then
        send one message per notification mode. Reconnects after a Redis outage."""
        while True:
            raise_if_cancelling()
            pubsub = self._platform.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(FILLS_CHANNEL)
                while True:
                    raise_if_cancelling()
                    msg = await pubsub.get_message(timeout=None)
                    if msg is None:
                        continue
                    burst = [msg]
                    deadline = asyncio.get_running_loop().time() + self._settings.alert_coalesce_s
                    while (left := deadline - asyncio.get_running_loop().time()) > 0:
                        more = await pubsub.get_message(timeout=left)
                        if more is not None:
                            burst.append(more)
                    await self._send_burst(burst)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: resubscribe
                raise_if_cancelling()
                log.warning("fills_subscription_lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001
                    pass

    async def _send_burst(self, burst: list[dict[str, Any]]) -> None:
        by_mode: dict[str, list[dict[str, Any]]] = {"on": [], "silent": []}
        for raw in burst:
            try:
                m = json.loads(raw["data"])
            except (ValueError, TypeError):
                log.warning("fills_channel_bad_message")
                continue
            mode = self._modes[fill_kind(str(m.get("exec_type", "")))]
            if mode != "off":
                by_mode[mode].append(m)
        for mode, messages in by_mode.items():
            if messages:
                await self._outbox.broadcast(self._recipients, coalesce(messages), silent=mode == "silent")

    # --- conditions ------------------------------------------------------------------------------

    async def watch(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed round must not stop the watcher
                raise_if_cancelling()
                log.warning("alert_check_failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(self._settings.alert_check_interval_s)

    async def check_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        state = await self._state.load()
        conditions = (await self._listener_conditions(now) + await self._bot_conditions(now)
                      + await self._drawdown_conditions())
        for c in conditions:
            was_firing = state.get(c.key, (False, None))[0]
            if c.firing != was_firing:
                await self._state.save(c.key, c.firing, c.text[:200])
                prefix = "ALERT: " if c.firing else "Recovered: "
                await self._outbox.broadcast(self._recipients, prefix + c.text)
        await self._reconciler_events(state)

    async def _listener_conditions(self, now: datetime) -> list[Condition]:
        names = sorted(await self._platform.hkeys(LISTENER_CONNECTIONS_KEY))
        if not names:
            return []
        beats = await self._platform.mget([listener_heartbeat_key(n) for n in names])
        out = []
        limit = self._settings.listener_down_after_s
        for name, beat in zip(names, beats):
            age = None
            if beat:
                age = (now - datetime.fromisoformat(beat.replace("Z", "+00:00"))).total_seconds()
            down = age is None or age > limit
            text = (f"listener connection {name} down for more than {limit:.0f}s" if down
                    else f"listener connection {name} is back")
            out.append(Condition(listener_alert_key(name), down, text))
        return out

    async def _bot_conditions(self, now: datetime) -> list[Condition]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT bot_id, last_heartbeat FROM trading.bots WHERE status <> 'stopped'")).fetchall()
        out = []
        limit = self._settings.bot_stale_after_s
        for bot_id, beat in rows:
            stale = beat is None or (now - beat).total_seconds() > limit
            text = (f"bot {bot_id} heartbeat older than {limit:.0f}s" if stale else f"bot {bot_id} heartbeat is back")
            out.append(Condition(bot_heartbeat_alert_key(bot_id), stale, text))
        return out

    async def _drawdown_conditions(self) -> list[Condition]:
        """Drawdown of realised net PnL from its peak, as a share of the equity at the peak
        (latest wallet equity plus the drawdown); bots without a limit or a wallet are skipped."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                """SELECT b.bot_id, b.max_drawdown_pct, w.total_equity
                     FROM trading.bots b
                     LEFT JOIN LATERAL (SELECT total_equity FROM trading.wallet_snapshots s
                                         WHERE s.bot_id = b.bot_id ORDER BY snapshot_time DESC LIMIT 1) w ON true
                    WHERE b.max_drawdown_pct IS NOT NULL""")).fetchall()
        out = []
        for bot_id, limit_pct, equity in rows:
            if equity is None:
                continue
            curve = (await self._reports.performance(bot_id)).performance.equity_curve
            if not curve:
                continue
            values = [v for _, v in curve]
            peak = max([Decimal(0), *values])
            drawdown = peak - values[-1]
            base = equity + drawdown
            if base <= 0:
                continue
            dd_pct = drawdown / base * 100
            firing = dd_pct > limit_pct
            text = (f"bot {bot_id} drawdown {dd_pct.quantize(Decimal('0.1'))}% ({money(drawdown)} USDT) "
                    f"past its limit of {limit_pct}%" if firing
                    else f"bot {bot_id} drawdown back within {limit_pct}%")
            out.append(Condition(drawdown_alert_key(bot_id), firing, text))
        return out

    async def _reconciler_events(self, state: dict[str, tuple[bool, str | None]]) -> None:
        """Each finished reconciler run that found missing fills is reported once, in whatever order
        the runs finish (see run_cursor.py)."""
        cursor = RunCursor.load(state.get(RECONCILER_CURSOR_KEY, (False, None))[1])
        async with self._pool.connection() as conn:
            if cursor is None:  # first start: only runs from now on
                row = await (await conn.execute("SELECT COALESCE(max(id), 0) FROM trading.sync_runs")).fetchone()
                await self._state.save(RECONCILER_CURSOR_KEY, False, RunCursor(int(row[0] if row else 0)).dump())
                return
            rows = await (await conn.execute(
                """SELECT id, bot_id, status, missing_found, recovered, started_at FROM trading.sync_runs
                    WHERE id > %s ORDER BY id""", (cursor.through,))).fetchall()
        to_report, after = step(cursor, [Run(*r) for r in rows], datetime.now(timezone.utc))
        for run in to_report:
            await self._outbox.broadcast(
                self._recipients,
                f"ALERT: reconciler found {run.missing_found} missing fills for {run.bot_id} "
                f"({run.recovered} recovered, run {run.status})")
        if after != cursor:
            await self._state.save(RECONCILER_CURSOR_KEY, False, after.dump())
