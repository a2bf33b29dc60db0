"""Fills into PostgreSQL through the listener's own write path (its Ingestor, as listener_user
through PgBouncer), so the PnL triggers run exactly as in production."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from shared.analytics.fills import LedgerFill
from shared.bots import BOTS
from shared.bybit.records import Execution
from shared.db.pool import open_pool
from shared.redis_client import redis_for
from services.websocket_listener.counters import Counters
from services.websocket_listener.ingest import Ingestor
from services.websocket_listener.rows import ListenerFill
from tests.support.stack import TestStack


def execution(f: LedgerFill, tag: str = "entry") -> Execution:
    return Execution(
        category="linear", symbol=f.symbol, exec_id=f.exec_id, order_id=f"o-{f.exec_id}",
        order_link_id=f"{f.bot_id}-{tag}-{f.exec_id}"[:36] if f.exec_type == "Trade" else "",
        side=f.side, exec_type=f.exec_type, exec_price=f.exec_price, exec_qty=f.exec_qty,
        exec_value=f.exec_price * f.exec_qty, exec_fee=f.commission, fee_rate=None, fee_currency="USDT",
        is_maker=False, closed_size=None, exec_pnl=None, leaves_qty=Decimal(0), order_price=None,
        order_qty=f.exec_qty, order_type="Market", stop_order_type=None, mark_price=None, seq=f.seq,
        exec_time=f.exec_time,
    )


class ListenerWriter:
    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    async def write(self, fills: list[LedgerFill], tags: dict[str, str] | None = None) -> None:
        """One batch (one transaction of the listener), committed when this returns. `tags` gives an
        exec_id's order tag (orderLinkId "{bot_id}-{tag}-..."; "entry" when not given)."""
        for f in fills:
            tag = (tags or {}).get(f.exec_id, "entry")
            await self._ingestor.put_fill(ListenerFill(f.bot_id, execution(f, tag), "sync"))
        await (await self._ingestor.barrier()).wait()


@asynccontextmanager
async def listener_writer(stack: TestStack) -> AsyncIterator[ListenerWriter]:
    pool = await open_pool(stack.db, "listener", max_size=3, autocommit=True)
    dbs = sorted({0} | {spec.redis_db for spec in BOTS.values()})
    redis_by_db = {db: redis_for(stack.redis, db) for db in dbs}
    ingestor = Ingestor(pool, redis_by_db, {b: s.redis_db for b, s in BOTS.items()}, Counters())
    task = asyncio.create_task(ingestor.run())
    try:
        yield ListenerWriter(ingestor)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()
        for r in redis_by_db.values():
            await r.aclose()
