"""One run per bot at a time: a Redis lock with expiry per bot, refreshed while the run lives (IO).

No session state goes through PgBouncer, so the lock lives in Redis (db 0), under
`lock:trade_sync:{bot_id}`, holding who took it. A holder that died without releasing it (SIGKILL)
is recognised when it ran on this host and its pid is gone; otherwise the lock expires after its TTL.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.trade_sync.errors import LockHeld
from shared.contracts import trade_sync_lock_key

log = structlog.get_logger()

_REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_STEAL = ("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
          "return 1 end return 0")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_is_dead(value: str, host: str) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    try:
        doc = json.loads(value)
        return doc.get("host") == host and isinstance(doc.get("pid"), int) and not _pid_alive(doc["pid"])
    except (ValueError, TypeError):
        return False


def describe_holder(value: str | None) -> str:
    try:
        doc = json.loads(value or "")
        return f"{doc.get('what', 'a run')} (pid {doc.get('pid')} on {doc.get('host')}, since {doc.get('since')})"
    except (ValueError, TypeError, AttributeError):
        return "another run"


class BotLocks:
    def __init__(self, redis: Redis, what: str, ttl_s: int = 60) -> None:
        self._redis = redis
        self._ttl_ms = ttl_s * 1000
        self._host = socket.gethostname()
        self._value = json.dumps({"token": uuid.uuid4().hex, "what": what, "pid": os.getpid(), "host": self._host,
                                  "since": datetime.now(UTC).isoformat(timespec="seconds")})
        self.held: list[str] = []
        self._refresher: asyncio.Task[None] | None = None
        self.lost: str | None = None
        self._on_lost: asyncio.Task[object] | None = None

    async def _take(self, bot_id: str) -> str | None:
        """None when taken, else a description of the holder."""
        key = trade_sync_lock_key(bot_id)
        if await self._redis.set(key, self._value, nx=True, px=self._ttl_ms):
            return None
        current = await self._redis.get(key)
        if current is None:
            return None if await self._redis.set(key, self._value, nx=True, px=self._ttl_ms) else "another run"
        if holder_is_dead(current, self._host):
            if await self._redis.eval(_STEAL, 1, key, current, self._value, self._ttl_ms):
                log.warning("stale_lock_taken_over", bot_id=bot_id, holder=describe_holder(current))
                return None
        return describe_holder(current)

    async def acquire(self, bot_ids: Iterable[str], *, skip_held: bool = False) -> list[str]:
        """Take every bot's lock (sorted order) or none: LockHeld names the holder. With `skip_held`, take what is free."""
        busy: list[str] = []
        for bot_id in sorted(set(bot_ids)):
            holder = await self._take(bot_id)
            if holder is None:
                self.held.append(bot_id)
            elif skip_held:
                busy.append(bot_id)
            else:
                await self.release()
                raise LockHeld(f"{bot_id} is busy: {holder} holds {trade_sync_lock_key(bot_id)}; "
                               "try again when it ends")
        if self.held:
            self._on_lost = asyncio.current_task()
            self._refresher = asyncio.create_task(self._refresh(), name="lock-refresh")
        return busy

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                for bot_id in self.held:
                    if not await self._redis.eval(_REFRESH, 1, trade_sync_lock_key(bot_id), self._value, self._ttl_ms):
                        self.lost = f"the lock of {bot_id} expired or was taken by another run"
                        log.error("lock_lost", bot_id=bot_id)
                        if self._on_lost is not None:
                            self._on_lost.cancel()
                        return
            except RedisError as exc:
                log.warning("lock_refresh_failed", error=type(exc).__name__)

    async def release(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        for bot_id in self.held:
            try:
                await self._redis.eval(_RELEASE, 1, trade_sync_lock_key(bot_id), self._value)
            except RedisError:
                pass  # it expires by itself
        self.held = []
