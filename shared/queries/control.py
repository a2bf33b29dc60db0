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
from shared.contracts import CONTROL_CHANNEL, control_key
from shared.queries.flatten_requests import FlattenResult, submit, wait_results
from shared.queries.results import ControlResult

if TYPE_CHECKING:
    from shared.queries.killswitch import KillReport

MAX_AUDIT_TEXT = 200


class BotController:
    def __init__(self, pool: AsyncConnectionPool, platform: Redis, flatten_wait_s: float = 20.0) -> None:
        self._pool = pool
        self._platform = platform
        self.flatten_wait_s = flatten_wait_s

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
        """Pause the bot (so it opens nothing new), tell it on `control_channel`, and have trade_sync
        (which holds the bot's key) close its positions: a hung or stopped bot is still flattened.
        Waits up to `flatten_wait_s` for trade_sync's result and says what is left."""
        if bot_id not in BOTS:
            raise ValueError(f"unknown bot {bot_id!r}")
        await self.set_status((bot_id,), "paused", by)
        await self.request_flatten(bot_id, by)
        result = (await self.execute_flatten((bot_id,), by))[bot_id]
        if result is None:
            return ControlResult("flatten", (bot_id,), "pending",
                                 f"not verified: trade_sync has not answered within {self.flatten_wait_s:.0f}s; "
                                 "the request stays queued, check /positions")
        return ControlResult("flatten", (bot_id,), "paused" if result.clean else "error", describe(result))

    async def request_flatten(self, bot_id: str, by: str) -> int:
        """Tell the bot on `control_channel` to close (it stops acting); how many processes heard it."""
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return int(await self._platform.publish(
            CONTROL_CHANNEL, json.dumps({"bot_id": bot_id, "command": "flatten", "by": by, "at": now})))

    async def execute_flatten(self, bot_ids: tuple[str, ...], by: str) -> dict[str, FlattenResult | None]:
        """Durable requests to trade_sync (flatten_requests.py), and their results: None where none
        came within `flatten_wait_s`."""
        ids = await submit(self._platform, bot_ids, by)
        return await wait_results(self._platform, ids, self.flatten_wait_s)

    async def kill_switch(self, by: str) -> KillReport:
        """Pause every bot, then have trade_sync flatten each with its own key (see killswitch.py)."""
        from shared.queries.killswitch import kill_switch  # it builds on this class

        return await kill_switch(self, by)

    async def audit(self, *, user_id: int, username: str | None, role: str, command: str, args: str,
                    result: str, detail: str | None = None) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO trading.audit_log (user_id, username, role, command, args, result, detail)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (user_id, (username or "")[:64] or None, role, command[:64], args[:MAX_AUDIT_TEXT], result,
                 (detail or "")[:MAX_AUDIT_TEXT] or None))


def describe(r: FlattenResult) -> str:
    if r.status != "done":
        return f"NOT executed ({r.status}): " + "; ".join(r.errors)[:300]
    closed = ", ".join(f"{sym} {'long' if side == 'Buy' else 'short'} {q}" for sym, side, q in r.closed)
    parts = [f"closed {closed}" if closed else "no open position",
             f"{r.cancelled_orders} open order(s) cancelled"]
    if r.left_error:
        parts.append(f"what is left could not be checked: {r.left_error[:200]}")
    elif r.left_positions or r.left_orders:
        held = ", ".join(f"{sym} {side} {q}" for sym, side, q in r.left_positions)
        parts.append(f"STILL OPEN: {held or 'no position'}; {r.left_orders} order(s)")
    else:
        parts.append("nothing left open")
    if r.errors and not r.clean:
        parts.append("FAILED: " + "; ".join(r.errors)[:300])
    return "; ".join(parts)
