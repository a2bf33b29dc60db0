"""Control commands and the audit log, as the `c2` role.

A bot's control status lives in `trading.bots.status` (durable, read by AlphaDBClient as the
fallback) and in the Redis key `control:{bot_id}` (what bots read first); every change is also
announced on `control_channel` so a running bot reacts at once (see docs/contracts.md).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from shared.bots import BOTS
from shared.queries.flatten import Flattener, FlattenOutcome
from shared.queries.results import ControlResult

if TYPE_CHECKING:
    from shared.queries.killswitch import KillReport

CONTROL_CHANNEL = "control_channel"
MAX_AUDIT_TEXT = 200


def control_key(bot_id: str) -> str:
    return f"control:{bot_id}"


class Control:
    def __init__(self, pool: AsyncConnectionPool, platform: Redis, flattener: Flattener | None = None) -> None:
        self._pool = pool
        self._platform = platform
        self._flattener = flattener

    async def set_status(self, targets: tuple[str, ...], status: str, by: str) -> ControlResult:
        """pause (status 'paused') or resume ('active'): a paused bot opens nothing new."""
        if status not in ("active", "paused"):
            raise ValueError(f"status must be active or paused, not {status!r}")
        unknown = [b for b in targets if b not in BOTS]
        if unknown:
            raise ValueError(f"unknown bot {unknown[0]!r}")
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE trading.bots SET status = %s, updated_at = now() WHERE bot_id = ANY(%s)",
                (status, list(targets)))
        command = "pause" if status == "paused" else "resume"
        async with self._platform.pipeline(transaction=True) as pipe:
            for bot_id in targets:
                pipe.set(control_key(bot_id), json.dumps({"status": status, "updated_at": now, "by": by}))
                pipe.publish(CONTROL_CHANNEL, json.dumps({"bot_id": bot_id, "command": command, "by": by,
                                                          "at": now}))
            await pipe.execute()
        return ControlResult(command, targets, status)

    async def flatten(self, bot_id: str, by: str) -> ControlResult:
        """Pause the bot (so it opens nothing new), tell it on `control_channel`, and, when C2 holds
        the bot's key, close its positions on the exchange itself: a hung bot is still flattened."""
        if bot_id not in BOTS:
            raise ValueError(f"unknown bot {bot_id!r}")
        await self.set_status((bot_id,), "paused", by)
        receivers = await self.request_flatten(bot_id, by)
        if self._flattener is None or not self._flattener.can_flatten(bot_id):
            return ControlResult("flatten", (bot_id,), "paused" if receivers else "no_listener",
                                 "no API key for this bot in C2: the bot itself must close")
        outcome = await self._flattener.flatten(bot_id)
        return ControlResult("flatten", (bot_id,), "error" if outcome.errors else "paused", describe(outcome))

    async def request_flatten(self, bot_id: str, by: str) -> int:
        """Ask the bot on `control_channel` to close everything itself; how many processes heard it."""
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return int(await self._platform.publish(
            CONTROL_CHANNEL, json.dumps({"bot_id": bot_id, "command": "flatten", "by": by, "at": now})))

    async def kill_switch(self, by: str) -> KillReport:
        """Pause every bot, then flatten each on the exchange with its own key (see killswitch.py)."""
        from shared.queries.killswitch import kill_switch  # it builds on this class

        return await kill_switch(self, self._flattener or Flattener({}), by)

    async def audit(self, *, user_id: int, username: str | None, role: str, command: str, args: str,
                    result: str, detail: str | None = None) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO trading.audit_log (user_id, username, role, command, args, result, detail)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (user_id, (username or "")[:64] or None, role, command[:64], args[:MAX_AUDIT_TEXT], result,
                 (detail or "")[:MAX_AUDIT_TEXT] or None))


def describe(outcome: FlattenOutcome) -> str:
    closed = ", ".join(f"{c.symbol} {'long' if c.side == 'Buy' else 'short'} {c.qty}" for c in outcome.closed)
    parts = [f"closed {closed}" if closed else "no open position",
             f"{outcome.cancelled_orders} open order(s) cancelled"]
    if outcome.errors:
        parts.append("FAILED: " + "; ".join(outcome.errors)[:300])
    return "; ".join(parts)
