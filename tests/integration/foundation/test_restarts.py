"""Each part of the stack stopped and restarted on its own: nothing committed is lost and the
client reconnects without a restart of its process."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import psycopg
import pytest

from shared.alpha_db_client import AlphaDBClient
from shared.redis_client import redis_for
from tests.support.stack import TestStack

pytestmark = pytest.mark.integration


async def eventually(fn, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await fn()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("part", ["postgres", "pgbouncer", "redis"])
async def test_restart_loses_nothing_and_client_reconnects(clean_state: TestStack, part: str) -> None:
    st = clean_state
    with psycopg.connect(st.db.dsn("listener"), prepare_threshold=None, autocommit=True) as conn:
        conn.execute("""INSERT INTO trading.fills (bot_id, symbol, exec_id, order_id, side, exec_type, exec_price,
            exec_qty, exec_value, exec_time, commission, source)
            VALUES ('shortseller_001', 'BTCUSDT', 'keep-me', 'o', 'Sell', 'Trade', 1, 1, 1, %s, 0, 'ws')""",
                     (datetime.now(UTC),))
    r = redis_for(st.redis, 0)
    await r.set("position:shortseller_001:BTCUSDT", json.dumps({"size": "-1", "side": "Sell"}))
    await r.aclose()
    await asyncio.sleep(1.2)  # Redis AOF is fsynced every second: what is older than that is durable

    async with AlphaDBClient(bot_id="shortseller_001", db=st.db, redis=st.redis, heartbeat_interval_s=0.5) as client:
        assert len(await client.recent_fills()) == 1
        await asyncio.to_thread(st.stop, part)
        assert st.status()[part] is False
        await asyncio.to_thread(st.start, part)
        fills = await eventually(client.recent_fills)
        pos = await eventually(lambda: client.get_position("BTCUSDT"))
        await eventually(client.heartbeat)
    assert [f.exec_id for f in fills] == ["keep-me"]
    assert pos is not None and str(pos.size) == "-1"
