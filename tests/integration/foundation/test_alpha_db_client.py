"""AlphaDBClient against the real stack: registration, reads, fills subscription."""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import psycopg
import pytest

from shared.alpha_db_client import AlphaDBClient
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


async def redis_set(stack: TestStack, db: int, key: str, value: str) -> None:
    from shared.redis_client import redis_for
    r = redis_for(stack.redis, db)
    await r.set(key, value)
    await r.aclose()


async def test_register_heartbeat_and_reads(clean_state: TestStack) -> None:
    st = clean_state
    await redis_set(st, 1, "position:lxalgo_001:BTCUSDT", json.dumps(
        {"size": "-0.5", "side": "Sell", "avg_price": "42000.5", "unrealized_pnl": "250",
         "mark_price": "41500", "updated_at": "2025-11-07T10:30:00Z"}))
    await redis_set(st, 0, "position:lxalgo_001:ETHUSDT", json.dumps({"size": "1", "side": "Buy"}))  # other db
    await redis_set(st, 0, "market:BTCUSDT:price", json.dumps({"price": "41500.1", "updated_at": "2025-11-07T10:30:00Z"}))
    async with AlphaDBClient(bot_id="lxalgo_001", redis_db=1, db=st.db, redis=st.redis) as client:
        positions = await client.get_positions()
        assert list(positions) == ["BTCUSDT"]
        pos = positions["BTCUSDT"]
        assert (pos.size, pos.side, pos.avg_price) == (Decimal("-0.5"), "Sell", Decimal("42000.5"))
        assert await client.get_position("SOLUSDT") is None
        price = await client.market_price("BTCUSDT")
        assert price is not None and price.price == Decimal("41500.1") and price.age_s > 3600
        assert await client.control_status() == "active"
        assert await client.recent_fills() == []
    with psycopg.connect(st.db.dsn("c2"), prepare_threshold=None) as conn:
        row = conn.execute("SELECT bot_name, redis_db, last_heartbeat IS NOT NULL FROM trading.bots "
                           "WHERE bot_id = 'lxalgo_001'").fetchone()
    assert row == ("LXAlgo", 1, True)


def test_client_has_no_write_path_for_fills_or_positions() -> None:
    names = [n for n in dir(AlphaDBClient) if not n.startswith("__")]
    assert not [n for n in names if any(w in n for w in ("insert", "write", "set_position", "save", "store"))]


def test_wrong_redis_db_is_refused() -> None:
    with pytest.raises(ValueError, match="uses Redis db 0"):
        AlphaDBClient(bot_id="shortseller_001", redis_db=2)


async def test_fills_subscription_is_filtered_to_the_bot(clean_state: TestStack) -> None:
    st = clean_state
    from shared.redis_client import redis_for
    pub = redis_for(st.redis, 0)
    async with AlphaDBClient(bot_id="momentum_001", db=st.db, redis=st.redis) as client:
        received: list[dict] = []

        async def consume() -> None:
            async for fill in client.fills():
                received.append(fill)
                if len(received) == 2:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        for bot, exec_id in [("lxalgo_001", "a"), ("momentum_001", "b"), ("shortseller_001", "c"),
                             ("momentum_001", "d")]:
            await pub.publish("fills_channel", json.dumps({"bot_id": bot, "exec_id": exec_id}))
        await asyncio.wait_for(task, 10)
    await pub.aclose()
    assert [f["exec_id"] for f in received] == ["b", "d"]


async def test_control_commands_reach_the_bot(clean_state: TestStack) -> None:
    """A pause given through the C2 query layer is seen by the bot, live and as standing state."""
    from shared.db.pool import open_pool
    from shared.queries.control import BotController
    from shared.redis_client import redis_for
    st = clean_state
    platform = redis_for(st.redis, 0)
    pool = await open_pool(st.db, "c2", max_size=2)
    async with AlphaDBClient(bot_id="momentum_001", db=st.db, redis=st.redis) as client:
        got: list[dict] = []

        async def consume() -> None:
            async for cmd in client.controls():
                got.append(cmd)
                return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        await BotController(pool, platform).set_status(("lxalgo_001",), "paused", "admin:1")
        await BotController(pool, platform).set_status(("momentum_001",), "paused", "admin:1")
        await asyncio.wait_for(task, 10)
        assert await client.control_status() == "paused"
    await pool.close()
    await platform.aclose()
    assert [(c["bot_id"], c["command"]) for c in got] == [("momentum_001", "pause")]
