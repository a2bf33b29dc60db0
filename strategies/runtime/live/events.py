"""Bot events for operators (IO): notices of the strategy and the runtime (entries, exits, tripped
guards, refusals, errors, adoption) onto the Redis Stream `events:{bot_id}` (db 0), which the
Telegram bot relays. Fields: `kind`, `bot_id`, `at` (ISO 8601 UTC), `data` (JSON)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.asyncio import Redis

from shared.contracts import events_stream_key
from strategies.runtime.model import Notice

log = structlog.get_logger()
EVENTS_MAXLEN = 10_000


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_fields(bot_id: str, notice: Notice) -> dict[str, str]:
    return {"kind": notice.kind, "bot_id": bot_id, "at": iso_ms(notice.time_ms),
            "data": json.dumps(notice.data, default=str, separators=(",", ":"))}


class EventSink:
    def __init__(self, bot_id: str, redis: Redis) -> None:
        self.bot_id = bot_id
        self.redis = redis
        self.key = events_stream_key(bot_id)
        self.sent = 0

    async def emit(self, notices: list[Notice]) -> None:
        """Written in one pipeline; a Redis outage loses the events (logged), never the bot."""
        if not notices:
            return
        for n in notices:
            log.info("bot_event", bot_id=self.bot_id, kind=n.kind, **{k: str(v) for k, v in n.data.items()})
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for n in notices:
                    pipe.xadd(self.key, event_fields(self.bot_id, n), maxlen=EVENTS_MAXLEN, approximate=True)
                await pipe.execute()
            self.sent += len(notices)
        except Exception as exc:  # noqa: BLE001 - an event is worth less than the bot
            log.warning("events_lost", bot_id=self.bot_id, count=len(notices), error=type(exc).__name__)

    async def one(self, kind: str, time_ms: int, **data: Any) -> None:
        await self.emit([Notice(time_ms, kind, data)])
