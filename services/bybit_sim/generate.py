"""`/admin/generate`: real executions for an account, made through the matching engine at a set rate."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.bybit_sim.engine import Event, OrderRequest
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import wall_ms
from services.bybit_sim.models import SimAccount, VenueError

if TYPE_CHECKING:
    from services.bybit_sim.venue import Venue


@dataclass
class Generation:
    id: str
    api_key: str
    count: int
    rate_per_s: float
    symbols: list[str]
    prefix: str
    rows_per_frame: int
    done: int = 0
    state: str = "running"
    error: str = ""
    started_ms: int = 0
    finished_ms: int = 0
    exec_ids: list[str] = field(default_factory=list, repr=False)
    task: asyncio.Task | None = field(default=None, repr=False)

    def status(self) -> dict[str, Any]:
        """The generation's progress; once it has ended, also the execIds it made for its account, in order
        (left out while it runs, so polling stays cheap)."""
        doc = {"id": self.id, "api_key": self.api_key, "count": self.count, "done": self.done,
               "rate_per_s": self.rate_per_s, "symbols": self.symbols, "state": self.state, "error": self.error,
               "started_ms": self.started_ms, "finished_ms": self.finished_ms}
        if self.state != "running":
            doc["exec_ids"] = self.exec_ids
        return doc


def parse_generation(body: Any, gen_id: str, accounts: dict[str, SimAccount]) -> Generation:
    if not isinstance(body, dict):
        raise VenueError(10001, "body must be a JSON object")
    api_key = body.get("api_key")
    if api_key not in accounts:
        raise VenueError(10003, "unknown api_key")
    count, rate = body.get("count"), body.get("rate_per_s", 1000)
    symbols = body.get("symbols", ["BTCUSDT"])
    prefix = body.get("prefix", "sim")
    rows_per_frame = body.get("rows_per_frame", 100)
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        raise VenueError(10001, "count must be a positive integer")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
        raise VenueError(10001, "rate_per_s must be positive")
    if not isinstance(symbols, list) or not symbols or any(s not in INSTRUMENTS for s in symbols):
        raise VenueError(10001, f"symbols must be a non-empty list from {sorted(INSTRUMENTS)}")
    if not isinstance(prefix, str) or not prefix or len(prefix) > 16:
        raise VenueError(10001, "prefix must be a short string")
    if not isinstance(rows_per_frame, int) or not 1 <= rows_per_frame <= 1000:
        raise VenueError(10001, "rows_per_frame must be 1..1000")
    return Generation(gen_id, api_key, count, float(rate), symbols, prefix, rows_per_frame, started_ms=wall_ms())


async def run_generation(venue: Venue, gen: Generation) -> None:
    """Alternating Buy/Sell market orders of the minimum size (so the position stays near flat),
    `orderLinkId` "{prefix}-gen-{n}", pushed in batches as the schedule comes due."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    acct = venue.engine.accounts[gen.api_key]
    try:
        while gen.done < gen.count:
            due = min(gen.count, int((loop.time() - t0) * gen.rate_per_s) + 1)
            events: list[Event] = []
            now = venue.stamp_ms()
            while gen.done < due:
                n = gen.done
                symbol = gen.symbols[(n // 2) % len(gen.symbols)]
                link = f"{gen.prefix}-gen-{n}"
                while link in acct.link_ids:
                    link = f"{gen.prefix}-gen-{n}-{os.urandom(2).hex()}"
                req = OrderRequest(symbol, "Buy" if n % 2 == 0 else "Sell", "Market", INSTRUMENTS[symbol].min_qty,
                                   None, "IOC", False, link)
                _, evs = venue.engine.create_order(gen.api_key, req, now)
                events += evs
                gen.done += 1
            events = venue.run_engine(events)
            gen.exec_ids += [e.obj.exec_id for e in events
                             if e.topic == "execution" and e.api_key == gen.api_key]
            venue.publish(events, gen.rows_per_frame)
            if gen.done < gen.count:
                await asyncio.sleep(0.005)
        gen.state = "done"
    except VenueError as exc:
        gen.state, gen.error = "failed", f"{exc.ret_code} {exc.ret_msg}"
    except asyncio.CancelledError:
        gen.state = "cancelled"
        raise
    finally:
        gen.finished_ms = wall_ms()
