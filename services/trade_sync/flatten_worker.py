"""Executes C2's flatten requests with each bot's own key (the contract: shared/queries/flatten_requests.py).

trade_sync's container holds every bot's key pair and C2's holds none, so /flatten and /killswitch
close positions here. One consumer (`trade_sync`) in the group: after a restart it first reads the
entries it had taken and not acknowledged, then new ones. Each request is tried until nothing is
left or `flatten_deadline_s` passes, then its result is written and the entry acknowledged.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import structlog
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from shared.bots import BOTS
from shared.queries.flatten import Flattener, Leftovers
from shared.contracts import FLATTEN_CONSUMER, FLATTEN_GROUP, FLATTEN_REQUESTS_STREAM, flatten_result_key
from shared.queries.flatten_requests import (FLATTEN_RESULT_TTL_S, BadRequest, FlattenRequest, FlattenResult,
                                             ensure_group, parse_request, utc_now_iso)

log = structlog.get_logger()


class FlattenWorker:
    def __init__(self, redis: Redis, pool: AsyncConnectionPool, flattener: Flattener, *,
                 deadline_s: float = 15.0, max_age_s: float = 300.0, retry_every_s: float = 1.0) -> None:
        self._redis = redis
        self._pool = pool
        self._flattener = flattener
        self._deadline_s = deadline_s
        self._max_age_s = max_age_s
        self._retry_every_s = retry_every_s

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: this consumer's unacknowledged entries first, then new ones. Redis outages
        are waited out."""
        backlog = True
        while not stop.is_set():
            try:
                await ensure_group(self._redis)
                got = await self._redis.xreadgroup(FLATTEN_GROUP, FLATTEN_CONSUMER,
                                                   {FLATTEN_REQUESTS_STREAM: "0" if backlog else ">"},
                                                   count=10, block=None if backlog else 1000)
                entries = got[0][1] if got else []
                if backlog and not entries:
                    backlog = False
                    continue
                for entry_id, fields in entries:
                    await self.handle(entry_id, fields or {})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis or the database away: try again
                log.error("flatten_worker_error", error=type(exc).__name__, detail=str(exc)[:200])
                backlog = True
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass

    async def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            req = parse_request(entry_id, fields)
        except BadRequest as exc:
            log.error("flatten_request_bad", entry_id=entry_id, error=str(exc))
            await self._redis.xack(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP, entry_id)
            return
        if await self._redis.exists(flatten_result_key(req.request_id)):  # done before an acknowledgement was lost
            await self._redis.xack(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP, entry_id)
            log.info("flatten_request_already_done", request_id=req.request_id, bot_id=req.bot_id)
            return
        log.info("flatten_request_taken", request_id=req.request_id, bot_id=req.bot_id, by=req.by)
        result = await self.execute(req)
        await self._audit(req, result)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(flatten_result_key(req.request_id), mapping=result.as_hash())
            pipe.expire(flatten_result_key(req.request_id), FLATTEN_RESULT_TTL_S)
            pipe.xack(FLATTEN_REQUESTS_STREAM, FLATTEN_GROUP, entry_id)
            await pipe.execute()
        log.info("flatten_request_done", request_id=req.request_id, bot_id=req.bot_id, status=result.status,
                 clean=result.clean, attempts=result.attempts, errors=list(result.errors)[:3])

    async def execute(self, req: FlattenRequest) -> FlattenResult:
        age = (datetime.now(timezone.utc) - req.at).total_seconds()
        if req.bot_id not in BOTS or not self._flattener.can_flatten(req.bot_id):
            why = "unknown bot" if req.bot_id not in BOTS else "trade_sync holds no API key for this bot"
            return FlattenResult(req.request_id, req.bot_id, "rejected", 0, (), (why,), (), 0, why, 0, utc_now_iso())
        if age > self._max_age_s:
            why = f"request {age:.0f}s old (limit {self._max_age_s:.0f}s): not executed"
            return FlattenResult(req.request_id, req.bot_id, "expired", 0, (), (why,), (), 0, why, 0, utc_now_iso())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        cancelled = 0
        closed: list[tuple[str, str, Decimal]] = []
        errors: list[str] = []
        attempts = 0
        left: Leftovers
        while True:
            attempts += 1
            try:
                outcome = await self._flattener.flatten(req.bot_id)  # positions re-read each time; reduce-only
                cancelled += outcome.cancelled_orders
                closed += [(c.symbol, c.side, c.qty) for c in outcome.closed]
                errors = list(outcome.errors)  # the last attempt's: earlier ones were retried
                left = await self._flattener.leftovers(req.bot_id)
            except Exception as exc:  # noqa: BLE001 - any client failure is retried until the deadline
                errors = [f"{type(exc).__name__}: {str(exc)[:150]}"]
                left = Leftovers(req.bot_id, (), 0, f"could not check: {type(exc).__name__}")
            nothing_left = left.error is None and not left.positions and left.open_orders == 0
            if nothing_left or loop.time() + self._retry_every_s > deadline:
                break
            log.warning("flatten_attempt_incomplete", request_id=req.request_id, bot_id=req.bot_id,
                        attempt=attempts, errors=errors[:3], left_error=left.error)
            await asyncio.sleep(self._retry_every_s)
        return FlattenResult(req.request_id, req.bot_id, "done", cancelled, tuple(closed), tuple(errors),
                             left.positions, left.open_orders, left.error, attempts, utc_now_iso())

    async def _audit(self, req: FlattenRequest, result: FlattenResult) -> None:
        detail = (f"request {req.request_id} by {req.by}: {result.cancelled_orders} order(s) cancelled, "
                  f"{len(result.closed)} position(s) closed, {len(result.left_positions)} left, "
                  f"{result.left_orders} order(s) left" + (f"; {'; '.join(result.errors)}" if result.errors else ""))
        try:
            async with self._pool.connection() as conn:
                await conn.execute(
                    """INSERT INTO trading.audit_log (user_id, username, role, command, args, result, detail)
                       VALUES (0, 'trade_sync', 'service', 'flatten_execute', %s, %s, %s)""",
                    (req.bot_id, "ok" if result.clean else result.status if result.status != "done" else "incomplete",
                     detail[:200]))
        except Exception as exc:  # noqa: BLE001 - the exchange is what matters; the result still goes out
            log.error("flatten_audit_failed", request_id=req.request_id, error=type(exc).__name__)
