"""Consumers that record every announcement, living through Redis restarts: the per-bot durable feeds
`fills:{bot_id}` (read like a bot does: XREAD from the last id seen) and the `fills_channel` pub/sub (which
misses what is published while the subscriber is disconnected, so it is reported, not relied on)."""
from __future__ import annotations

import asyncio
import json
from collections import Counter

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.websocket_listener.ingest import FILLS_CHANNEL
from services.websocket_listener.ingest import fill_feed_key as fill_feed
from shared.settings import RedisSettings


def _client(settings: RedisSettings) -> aioredis.Redis:
    return aioredis.Redis(host=settings.redis_host, port=settings.redis_port,
                          password=settings.redis_password.get_secret_value() if settings.redis_password else None, db=0, decode_responses=True,
                          socket_connect_timeout=2, socket_timeout=10)


class FeedRecorder:
    """XREAD of every bot's feed from id 0, resuming from the last id seen after a lost connection."""

    def __init__(self, settings: RedisSettings, bots: list[str]) -> None:
        self.settings = settings
        self.last_id = {fill_feed(b): "0-0" for b in bots}
        self.seen: dict[str, Counter[str]] = {b: Counter() for b in bots}  # bot -> exec_id -> entries
        self.first_ms: dict[str, int] = {}  # exec_id -> when first announced (its entry id's time, Redis clock)
        self.misfiled: list[tuple[str, str]] = []  # (feed, exec_id) whose message names another bot
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-recorder")

    async def _run(self) -> None:
        while True:
            r = _client(self.settings)
            try:
                while True:
                    answer = await r.xread(dict(self.last_id), count=2000, block=1000)
                    for stream, entries in answer or []:
                        bot = stream.split(":", 1)[1]
                        for entry_id, fields in entries:
                            self.last_id[stream] = entry_id
                            self.seen[bot][fields["exec_id"]] += 1
                            self.first_ms.setdefault(fields["exec_id"], int(entry_id.split("-", 1)[0]))
                            if json.loads(fields["fill"]).get("bot_id") != bot:
                                self.misfiled.append((stream, fields["exec_id"]))
            except (RedisError, OSError):
                self.reconnects += 1
                await asyncio.sleep(0.5)
            finally:
                await r.aclose()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ChannelRecorder:
    """Subscribes to `fills_channel`, resubscribing after a lost connection."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.seen: dict[str, Counter[str]] = {}
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="channel-recorder")

    async def _run(self) -> None:
        while True:
            r = _client(self.settings)
            pubsub = r.pubsub()
            try:
                await pubsub.subscribe(FILLS_CHANNEL)
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        data = json.loads(msg["data"])
                        self.seen.setdefault(data["bot_id"], Counter())[data["exec_id"]] += 1
            except (RedisError, OSError):
                self.reconnects += 1
                await asyncio.sleep(0.5)
            finally:
                await pubsub.aclose()
                await r.aclose()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def read_whole_feed(settings: RedisSettings, bot_id: str) -> Counter[str]:
    """Every entry still in a bot's feed (XRANGE from the start), as a second reading of the authority."""
    r = _client(settings)
    out: Counter[str] = Counter()
    try:
        start = "-"
        while True:
            entries = await r.xrange(fill_feed(bot_id), min=start, count=5000)
            for entry_id, fields in entries:
                out[fields["exec_id"]] += 1
            if len(entries) < 5000:
                return out
            start = "(" + entries[-1][0]
    finally:
        await r.aclose()
