"""Whether a live bot is still deciding: the record its process keeps and the judgement on it.

The DB heartbeat (`trading.bots.last_heartbeat`, `heartbeat:bot:{bot_id}`) is a task of its own and
goes on beating while the bot's loop is stuck; this record moves only when the loop hands the
strategy a candle. The bot process writes the Redis hash `liveness:bot:{bot_id}` (platform DB) every
few seconds from its own event loop:

- `boot_ms`: when the process started; `started_ms`: when the bot had reconciled, warmed up and
  started deciding (0 before);
- `decided_ms`: wall-clock time the last candle was handed to the strategy (the start time until the
  first one); `bars`: candles handled since the start;
- `interval_ms`: its shortest subscribed candle interval; `written_ms`: time of this write.

`verdict()` (pure) says what is wrong, if anything: nothing decided for longer than the limit
(default 2 x the interval + slack), counted from the last decision, else from the start, else from
the boot. A record not refreshed for as long (a frozen process) fails too.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.contracts import liveness_key

log = structlog.get_logger()
DEFAULT_SLACK_S = 60.0


@dataclass(frozen=True)
class Liveness:
    boot_ms: int
    started_ms: int
    decided_ms: int
    bars: int
    interval_ms: int
    written_ms: int

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> Liveness:
        """From the Redis hash; ValueError naming the field when one is missing or not a number."""
        values = {}
        for name in cls.__dataclass_fields__:
            raw = fields.get(name)
            if raw is None or not raw.strip().lstrip("-").isdigit():
                raise ValueError(f"field {name!r} is {'missing' if raw is None else f'not a whole number: {raw!r}'}")
            values[name] = int(raw)
        return cls(**values)

    def fields(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in self.__dataclass_fields__}


def limit_ms(interval_ms: int, slack_s: float = DEFAULT_SLACK_S) -> int:
    return 2 * interval_ms + int(slack_s * 1000)


def verdict(rec: Liveness, now_ms: int, limit: int) -> str | None:
    """None when the bot decided within `limit` ms (and its record is fresh), else why not."""
    if rec.started_ms == 0:
        age = now_ms - rec.boot_ms
        if age > limit:
            return f"not started deciding {age / 1000:.0f} s after boot (limit {limit / 1000:.0f} s)"
    else:
        age = now_ms - rec.decided_ms
        if age > limit:
            what = "no candle decided" if rec.bars else "no candle decided since the start"
            return f"{what} for {age / 1000:.0f} s (limit {limit / 1000:.0f} s; {rec.bars} handled)"
    stale = now_ms - rec.written_ms
    if stale > limit:
        return f"liveness record not refreshed for {stale / 1000:.0f} s (limit {limit / 1000:.0f} s)"
    return None


def now_ms() -> int:
    return int(time.time() * 1000)


class LivenessWriter:
    """Keeps `liveness:bot:{bot_id}` for a running LiveBot (read from its `started` event and its
    `handled_bars` count; the LiveBot is not changed). Runs on the bot's event loop, so a blocked
    loop stops it too."""

    def __init__(self, redis: Redis, bot_id: str, interval_ms: int, every_s: float = 2.0) -> None:
        self.redis = redis
        self.key = liveness_key(bot_id)
        self.every_s = every_s
        t = now_ms()
        self.rec = Liveness(boot_ms=t, started_ms=0, decided_ms=0, bars=0, interval_ms=interval_ms, written_ms=t)

    def observe(self, started: bool, bars: int, t: int) -> Liveness:
        r = self.rec
        started_ms = r.started_ms or (t if started else 0)
        decided_ms = r.decided_ms or started_ms
        if bars != r.bars:
            decided_ms = t
        self.rec = Liveness(r.boot_ms, started_ms, decided_ms, bars, r.interval_ms, t)
        return self.rec

    async def write(self, started: bool, bars: int) -> None:
        rec = self.observe(started, bars, now_ms())
        await self.redis.hset(self.key, mapping=rec.fields())  # type: ignore[arg-type]

    async def follow(self, started: asyncio.Event, bars: Callable[[], int]) -> None:
        """Write now and every `every_s` until cancelled (a Redis error is retried next time)."""
        while True:
            try:
                await self.write(started.is_set(), bars())
            except (RedisError, OSError) as exc:
                log.warning("liveness_write_failed", key=self.key, error=type(exc).__name__)
            await asyncio.sleep(self.every_s)

