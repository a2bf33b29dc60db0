"""Relays the bots' events (Redis Streams `events:{bot_id}`, db 0) to the admins and viewers (IO).

One consumer group (`telegram_c2`) on every bot's stream, so nothing is lost while the Telegram
bot is down: on start it first re-reads what it had taken and not acknowledged, then new entries.
Events arriving within `C2_EVENT_BATCH_S` (5 s) are sent as one message per chat (split only past
Telegram's length limit), through the Outbox (paced under Telegram's limits, retried); the entries
are acknowledged only once every message of their batch is delivered. A malformed entry (bad JSON,
unknown kind, missing fields) gets one log line, is copied to `events:dead_letters` and
acknowledged. Kinds switched off (C2_ALERT_KINDS / C2_ALERT_KINDS_OFF) and events older than
C2_EVENT_MAX_AGE_S are acknowledged without a message.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.telegram_c2.alerts import raise_if_cancelling
from services.telegram_c2.config import C2Settings
from services.telegram_c2.events import BadEvent, BotEvent, batch_messages, event_line, parse_event, wanted
from services.telegram_c2.formatting_ops import bot_name
from services.telegram_c2.sender import Outbox, Outgoing
from shared.bots import BOTS
from shared.contracts import EVENTS_CONSUMER, EVENTS_DEAD_LETTERS_STREAM, EVENTS_GROUP, events_stream_key

log = structlog.get_logger()
DEAD_LETTERS = EVENTS_DEAD_LETTERS_STREAM  # the name the tests import
DEAD_LETTERS_MAXLEN = 10_000
READ_COUNT = 200

Entry = tuple[str, str, dict[str, str] | None]  # (stream, entry id, fields)


class EventRelay:
    def __init__(self, settings: C2Settings, outbox: Outbox, recipients: tuple[int, ...], platform: Redis,
                 bot_ids: tuple[str, ...] = tuple(BOTS)) -> None:
        self._settings = settings
        self._outbox = outbox
        self._recipients = recipients
        self._redis = platform
        self._streams = tuple(events_stream_key(b) for b in bot_ids)
        self._on = settings.kinds_on
        self._off = settings.kinds_off
        self.delivered = 0
        self.dead_lettered = 0

    async def _ensure_groups(self) -> None:
        for stream in self._streams:
            try:  # from the beginning: what was written before the first start is relayed too (age-bounded)
                await self._redis.xgroup_create(stream, EVENTS_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self, backlog: bool, block_ms: int | None) -> list[Entry]:
        got = await self._redis.xreadgroup(EVENTS_GROUP, EVENTS_CONSUMER,
                                           {s: "0" if backlog else ">" for s in self._streams},
                                           count=READ_COUNT, block=None if backlog else max(1, block_ms or 1))
        return [(stream, entry_id, fields) for stream, entries in (got or []) for entry_id, fields in entries]

    async def run(self) -> None:
        backlog = True
        while True:
            raise_if_cancelling()
            try:
                await self._ensure_groups()
                if backlog:
                    batch = await self._read(True, None)
                    if not batch:
                        backlog = False
                        continue
                else:
                    batch = await self._read(False, 5000)
                    if not batch:
                        continue
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + self._settings.event_batch_s
                    while (left := deadline - loop.time()) > 0:
                        batch += await self._read(False, int(left * 1000))
                await self.relay(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: read again (unacknowledged entries first)
                raise_if_cancelling()
                log.warning("bot_events_read_failed", error=type(exc).__name__, detail=str(exc)[:200])
                backlog = True
                await asyncio.sleep(1.0)

    async def relay(self, batch: list[Entry]) -> None:
        now = datetime.now(timezone.utc)
        events: list[BotEvent] = []
        skipped_old = skipped_off = 0
        for stream, entry_id, fields in batch:
            try:
                event = parse_event(stream, entry_id, fields)
            except BadEvent as exc:
                await self._dead_letter(stream, entry_id, fields, str(exc))
                continue
            if (now - event.at).total_seconds() > self._settings.event_max_age_s:
                skipped_old += 1
            elif not wanted(event.kind, self._on, self._off):
                skipped_off += 1
            else:
                events.append(event)
        if skipped_old:
            log.warning("bot_events_too_old", count=skipped_old, max_age_s=self._settings.event_max_age_s)
        events.sort(key=lambda e: (e.at, e.stream, e.entry_id))
        texts = batch_messages([event_line(e, bot_name(e.bot_id)) for e in events])
        waits = []
        for text in texts:
            for chat_id in self._recipients:
                done = asyncio.Event()
                await self._outbox.put(Outgoing(chat_id, text, done=done))
                waits.append(done.wait())
        await asyncio.gather(*waits)
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _fields in batch:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, EVENTS_GROUP, *ids)
            await pipe.execute()
        self.delivered += len(events)
        if events or skipped_off:
            log.info("bot_events_relayed", events=len(events), messages=len(texts), switched_off=skipped_off)

    async def _dead_letter(self, stream: str, entry_id: str, fields: dict[str, str] | None, reason: str) -> None:
        log.error("bot_event_bad", stream=stream, entry_id=entry_id, reason=reason)
        self.dead_lettered += 1
        record = {"stream": stream, "entry_id": entry_id, "reason": reason,
                  **{f"field:{k}"[:64]: str(v)[:2000] for k, v in (fields or {}).items()}}
        await self._redis.xadd(EVENTS_DEAD_LETTERS_STREAM, record, maxlen=DEAD_LETTERS_MAXLEN, approximate=True)
