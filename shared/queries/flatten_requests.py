"""Durable flatten requests: C2 asks, trade_sync (which holds every bot's key) closes.

C2 appends one entry per bot to the Redis Stream `control:flatten_requests` (db 0): `request_id`,
`bot_id`, `by`, `at` (ISO UTC). trade_sync reads it with the consumer group `trade_sync`, cancels the
bot's open orders and closes its positions reduce-only with the bot's own key (flatten.py), checks
what is left, writes the result to the hash `control:flatten_result:{request_id}` (TTL one day) and
only then acknowledges the entry. An entry taken by a trade_sync that died is read again from its
pending list when it restarts; a request whose result already exists is acknowledged without acting
again, and every close is reduce-only against freshly read positions, so a repeat cannot open an
opposite position. A request older than its limit (default 5 minutes) is not executed: its result
says `expired`.
"""
from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.contracts import FLATTEN_GROUP, FLATTEN_REQUESTS_STREAM, flatten_result_key

FLATTEN_RESULT_TTL_S = 86_400
REQUESTS_MAXLEN = 10_000

result_key = flatten_result_key  # the name C2, trade_sync and the tests import


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FlattenRequest:
    entry_id: str
    request_id: str
    bot_id: str
    by: str
    at: datetime


class BadRequest(ValueError):
    pass


def parse_request(entry_id: str, fields: dict[str, str]) -> FlattenRequest:
    """A stream entry as a request (pure); BadRequest says what is wrong."""
    missing = [k for k in ("request_id", "bot_id", "at") if not fields.get(k)]
    if missing:
        raise BadRequest(f"missing {', '.join(missing)}")
    try:
        at = datetime.fromisoformat(fields["at"].replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"bad time {fields['at'][:40]!r}") from None
    if at.tzinfo is None:
        raise BadRequest("time without a zone")
    return FlattenRequest(entry_id, fields["request_id"], fields["bot_id"], fields.get("by", ""), at)


@dataclass(frozen=True)
class FlattenResult:
    """What trade_sync did for one request and what the bot still holds on the exchange afterwards."""
    request_id: str
    bot_id: str
    status: str  # done | expired | rejected
    cancelled_orders: int
    closed: tuple[tuple[str, str, Decimal], ...]  # (symbol, side of the closed position, qty)
    errors: tuple[str, ...]
    left_positions: tuple[tuple[str, str, Decimal], ...]
    left_orders: int
    left_error: str | None  # what is left could not be read
    attempts: int
    finished_at: str

    @property
    def clean(self) -> bool:
        return (self.status == "done" and self.left_error is None and not self.left_positions
                and self.left_orders == 0)

    def as_hash(self) -> dict[str, str]:
        return {"request_id": self.request_id, "bot_id": self.bot_id, "status": self.status,
                "cancelled_orders": str(self.cancelled_orders),
                "closed": json.dumps([[s, side, str(q)] for s, side, q in self.closed]),
                "errors": json.dumps(list(self.errors)),
                "left_positions": json.dumps([[s, side, str(q)] for s, side, q in self.left_positions]),
                "left_orders": str(self.left_orders), "left_error": self.left_error or "",
                "attempts": str(self.attempts), "finished_at": self.finished_at}


def _triples(text: str) -> tuple[tuple[str, str, Decimal], ...]:
    return tuple((str(s), str(side), Decimal(str(q))) for s, side, q in json.loads(text or "[]"))


def parse_result(h: dict[str, str]) -> FlattenResult:
    """The result hash as written by `as_hash` (pure); ValueError when it is not one."""
    try:
        return FlattenResult(h["request_id"], h["bot_id"], h["status"], int(h["cancelled_orders"]),
                             _triples(h["closed"]), tuple(str(e) for e in json.loads(h["errors"])),
                             _triples(h["left_positions"]), int(h["left_orders"]), h.get("left_error") or None,
                             int(h.get("attempts") or 0), h.get("finished_at", ""))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"unreadable flatten result: {type(exc).__name__}") from None


async def ensure_group(redis: Redis) -> None:
    """Create the stream and its group from the beginning (old entries are refused by age, not skipped)."""
    try:
        await redis.xgroup_create(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def submit(redis: Redis, bot_ids: tuple[str, ...], by: str) -> dict[str, str]:
    """Append one request per bot; {bot_id: request_id}."""
    await ensure_group(redis)
    ids = {bot_id: secrets.token_hex(8) for bot_id in bot_ids}
    now = utc_now_iso()
    async with redis.pipeline(transaction=True) as pipe:
        for bot_id, request_id in ids.items():
            pipe.xadd(FLATTEN_REQUESTS_STREAM, {"request_id": request_id, "bot_id": bot_id, "by": by, "at": now},
                      maxlen=REQUESTS_MAXLEN, approximate=True)
        await pipe.execute()
    return ids


async def wait_results(redis: Redis, request_ids: dict[str, str], timeout_s: float,
                       poll_s: float = 0.2) -> dict[str, FlattenResult | None]:
    """Each bot's result, or None for those without one after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    found: dict[str, FlattenResult | None] = {b: None for b in request_ids}
    while True:
        for bot_id, request_id in request_ids.items():
            if found[bot_id] is None:
                raw: dict[str, Any] = await redis.hgetall(flatten_result_key(request_id))
                if raw:
                    found[bot_id] = parse_result(raw)
        if all(r is not None for r in found.values()) or loop.time() >= deadline:
            return found
        await asyncio.sleep(min(poll_s, max(0.0, deadline - loop.time())))
