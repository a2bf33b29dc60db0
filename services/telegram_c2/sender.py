"""Outgoing alerts: queued, paced under Telegram's limits, retried until delivered.

Telegram allows about one message per second per chat and about thirty per second in all; past
that it answers 429 with `retry_after`. The outbox paces itself below both limits, honours
`retry_after` when it comes anyway, retries network failures with backoff, and never drops a
message silently: only a permanent refusal (chat not found, bot blocked) ends a message, and that
is logged as an error.
"""
from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter

log = structlog.get_logger()


@dataclass(frozen=True)
class Outgoing:
    chat_id: int
    text: str
    silent: bool = False
    photo: bytes | None = None
    done: asyncio.Event | None = field(default=None, compare=False)  # set once delivered (or refused for good)


def _retry_after_s(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Outbox:
    def __init__(self, bot: Bot, *, per_chat_interval_s: float = 1.1, global_interval_s: float = 0.05,
                 backoff_max_s: float = 60.0, queue_size: int = 10_000) -> None:
        self._bot = bot
        self._per_chat_interval_s = per_chat_interval_s
        self._global_interval_s = global_interval_s
        self._backoff_max_s = backoff_max_s
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=queue_size)
        self._next_chat: dict[int, float] = {}
        self._next_global = 0.0
        self.sent = 0
        self.retries = 0
        self.undeliverable = 0
        self._unsent = 0

    async def put(self, item: Outgoing) -> None:
        self._unsent += 1
        await self._queue.put(item)

    async def broadcast(self, chat_ids: tuple[int, ...], text: str, *, silent: bool = False) -> None:
        for chat_id in chat_ids:
            await self.put(Outgoing(chat_id, text, silent))

    def pending(self) -> int:
        """Messages not yet delivered (queued or being retried)."""
        return self._unsent

    async def join(self) -> None:
        await self._queue.join()

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
                if item.done is not None:
                    item.done.set()
            finally:
                self._unsent -= 1
                self._queue.task_done()

    async def _pace(self, chat_id: int) -> None:
        now = time.monotonic()
        wait = max(self._next_chat.get(chat_id, 0.0), self._next_global) - now
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.monotonic()
        self._next_chat[chat_id] = now + self._per_chat_interval_s
        self._next_global = now + self._global_interval_s

    async def _deliver(self, item: Outgoing) -> None:
        attempt = 0
        while True:
            await self._pace(item.chat_id)
            try:
                if item.photo is not None:
                    await self._bot.send_photo(item.chat_id, item.photo, caption=item.text[:1024],
                                               disable_notification=item.silent)
                else:
                    await self._bot.send_message(item.chat_id, item.text[:4096], disable_notification=item.silent)
                self.sent += 1
                return
            except RetryAfter as exc:
                delay = _retry_after_s(exc)
                self._next_chat[item.chat_id] = time.monotonic() + delay
                self._next_global = time.monotonic() + min(delay, 1.0)
            except (BadRequest, Forbidden) as exc:
                self.undeliverable += 1
                log.error("alert_undeliverable", chat_id=item.chat_id, error=str(exc)[:200])
                return
            except Exception as exc:  # noqa: BLE001 - NetworkError, TimedOut, anything transient: retry
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                delay = min(self._backoff_max_s, 0.5 * 2 ** min(attempt, 10))
                self._next_chat[item.chat_id] = time.monotonic() + delay
                log.warning("alert_send_retry", chat_id=item.chat_id, attempt=attempt + 1,
                            error=type(exc).__name__, retry_in_s=round(delay, 1))
            attempt += 1
            self.retries += 1
