"""Ground-truth comparisons between the venue, PostgreSQL and Redis, shared by the listener tests."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import psycopg

from services.bybit_sim.handle import VenueAdmin
from shared.bybit.fields import ms_to_datetime
from shared.bybit.rest_client import BybitRestClient
from shared.redis_client import redis_for
from tests.support.stack import TestStack

# venue REST field -> trading.fills column, compared as Decimal / text / bool / int / time.
DECIMALS = {"execPrice": "exec_price", "execQty": "exec_qty", "execValue": "exec_value", "execFee": "commission",
            "feeRate": "fee_rate", "closedSize": "closed_size", "execPnl": "exec_pnl", "leavesQty": "leaves_qty",
            "orderPrice": "order_price", "orderQty": "order_qty", "markPrice": "mark_price"}
TEXTS = {"symbol": "symbol", "orderId": "order_id", "side": "side", "execType": "exec_type",
         "orderType": "order_type", "stopOrderType": "stop_order_type", "feeCurrency": "fee_currency"}


def db_fills(stack: TestStack, bot_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        cur = conn.execute("SELECT * FROM trading.fills WHERE bot_id = %s ORDER BY exec_time, seq", (bot_id,))
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def count_fills(stack: TestStack, bot_id: str) -> int:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        row = conn.execute("SELECT count(*) FROM trading.fills WHERE bot_id = %s", (bot_id,)).fetchone()
        return int(row[0]) if row else 0


async def wait_for_count(stack: TestStack, bot_id: str, expected: int, timeout_s: float, tail: Any = None) -> int:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        n = await asyncio.to_thread(count_fills, stack, bot_id)
        if n >= expected or asyncio.get_running_loop().time() > deadline:
            return n
        await asyncio.sleep(0.2)


def field_differences(venue_rows: list[dict[str, Any]], rows: list[dict[str, Any]], bot_id: str) -> list[str]:
    """Every field of every venue execution against its stored row; returns the differences found."""
    by_id = {r["exec_id"]: r for r in rows}
    out: list[str] = []
    for v in venue_rows:
        r = by_id.get(v["execId"])
        if r is None:
            out.append(f"{v['execId']}: missing")
            continue
        for src, col in DECIMALS.items():
            want = Decimal(v[src]) if v.get(src) not in (None, "") else None
            if want != r[col]:
                out.append(f"{v['execId']}.{col}: venue {want} stored {r[col]}")
        for src, col in TEXTS.items():
            want = v.get(src) or None
            if want != (r[col] or None):
                out.append(f"{v['execId']}.{col}: venue {want!r} stored {r[col]!r}")
        checks = {
            "client_order_id": (v["orderLinkId"] or None, r["client_order_id"]),
            "is_maker": (v["isMaker"], r["is_maker"]),
            "seq": (int(v["seq"]), r["seq"]),
            "exec_time": (ms_to_datetime(int(v["execTime"])), r["exec_time"]),
            "bot_id": (bot_id, r["bot_id"]),
        }
        out += [f"{v['execId']}.{k}: venue {a!r} stored {b!r}" for k, (a, b) in checks.items() if a != b]
    extra = set(by_id) - {v["execId"] for v in venue_rows}
    out += [f"{e}: stored but unknown to the venue" for e in sorted(extra)]
    return out


async def redis_positions(stack: TestStack, bot_id: str, db: int) -> dict[str, dict[str, Any]]:
    r = redis_for(stack.redis, db)
    try:
        keys = await r.keys(f"position:{bot_id}:*")
        return {k.rsplit(":", 1)[1]: json.loads(await r.get(k)) for k in keys}
    finally:
        await r.aclose()


async def venue_positions(rest_url: str, key: str, secret: str, symbols: list[str]) -> dict[str, dict[str, str]]:
    """Non-flat positions as the venue reports them over REST: symbol -> signed size, side, average price."""
    out = {}
    async with BybitRestClient(rest_url, key, secret) as rest:
        for symbol in symbols:
            [row] = (await rest.get("/v5/position/list", {"category": "linear", "symbol": symbol})).result["list"]
            if Decimal(row["size"]) != 0:
                size = Decimal(row["size"]) * (-1 if row["side"] == "Sell" else 1)
                out[symbol] = {"size": size, "side": row["side"], "avg_price": Decimal(row["avgPrice"])}
    return out


def normalise_redis_positions(positions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s: {"size": Decimal(p["size"]), "side": p["side"], "avg_price": Decimal(p["avg_price"])}
            for s, p in positions.items()}


class FillsSubscriber:
    """Collects every `fills_channel` message from before the listener starts."""

    def __init__(self, stack: TestStack) -> None:
        self._redis = redis_for(stack.redis, 0)
        self.messages: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FillsSubscriber:
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe("fills_channel")
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for msg in self._pubsub.listen():
            if msg["type"] == "message":
                self.messages.append(json.loads(msg["data"]))

    def counts(self, bot_id: str) -> Counter[str]:
        return Counter(m["exec_id"] for m in self.messages if m["bot_id"] == bot_id)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._pubsub.aclose()
        await self._redis.aclose()


async def venue_executions(admin: VenueAdmin, key: str) -> list[dict[str, Any]]:
    return await admin.executions(key)


def log_events(log_text: str, *events: str) -> list[dict[str, Any]]:
    """The listener's JSON log lines whose event is one of `events`, in order."""
    out = []
    for line in log_text.splitlines():
        if line.startswith("{") and any(f'"{e}"' in line for e in events):
            entry = json.loads(line)
            if entry.get("event") in events:
                out.append(entry)
    return out


def replaced_after_dead(log_text: str, connection: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The connection's first loss for silence (DeadConnection) and the first `connection_up` after it."""
    dead = None
    for entry in log_events(log_text, "connection_lost", "connection_up"):
        if entry.get("connection") != connection:
            continue
        if dead is None and entry["event"] == "connection_lost" and entry["error"].startswith("DeadConnection"):
            dead = entry
        elif dead is not None and entry["event"] == "connection_up":
            return dead, entry
    return None


async def fill_feed_ids(stack: TestStack, bot_id: str) -> Counter[str]:
    """exec_id -> how many entries the bot's durable fill feed (`fills:{bot_id}`, db 0) holds for it; each
    entry's `fill` field is checked to be the fills_channel message of that exec_id."""
    r = redis_for(stack.redis, 0)
    try:
        out: Counter[str] = Counter()
        for _entry_id, fields in await r.xrange(f"fills:{bot_id}"):
            fill = json.loads(fields["fill"])
            assert fill["exec_id"] == fields["exec_id"] and fill["bot_id"] == bot_id
            out[fields["exec_id"]] += 1
        return out
    finally:
        await r.aclose()
