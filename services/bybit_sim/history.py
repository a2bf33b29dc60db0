"""Seeded past trading for an account: Trade executions plus Funding at every 8-hour mark.

All of it runs through the real engine at past timestamps, so positions, fees, PnL and the wallet
stay consistent with the executions. Same seed, months, count and end time -> the same history.
"""
from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from services.bybit_sim.candles import PricePath, load_candles
from services.bybit_sim.engine import Engine, OrderRequest
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import FUNDING_INTERVAL_MS, wall_ms
from services.bybit_sim.models import SimAccount, VenueError
from services.bybit_sim.state import FORMAT_VERSION, account_to_doc, read_state, stamp_clock_conflict, write_state
from services.bybit_sim.venue import WARMUP_MS, AccountSpec

HOUR_MS = 3_600_000
MONTH_MS = 30 * 24 * HOUR_MS
SYMBOL_WEIGHTS = (("BTCUSDT", 5), ("ETHUSDT", 3), ("SOLUSDT", 2))


def generate_account_history(spec: AccountSpec, months: int, executions: int, seed: int, end_ms: int,
                             paths: dict[str, PricePath], link_prefix: str = "sim") -> tuple[SimAccount, Engine]:
    rng = random.Random(seed)
    start_ms = end_ms - months * MONTH_MS
    clock = {"t": start_ms}

    def price_of(symbol: str) -> Decimal:
        path = paths[symbol]
        return path.price_at(path.start_ms + (clock["t"] - start_ms))

    engine = Engine(seed, price_of)
    acct = SimAccount(spec.api_key, spec.secret, spec.balance)
    engine.accounts[acct.api_key] = acct
    times = sorted(rng.randrange(start_ms, end_ms) for _ in range(executions))
    symbols = [s for s, w in SYMBOL_WEIGHTS for _ in range(w)]
    next_mark = (start_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
    n_orders = 0
    for t in times:
        if len(acct.executions) >= executions:
            break
        while next_mark <= t and len(acct.executions) < executions:
            clock["t"] = next_mark
            rate = Decimal(rng.randint(-5, 15)) / Decimal(100000)
            for symbol in INSTRUMENTS:
                if len(acct.executions) < executions:
                    engine.settle_funding(symbol, price_of(symbol), rate, next_mark)
            next_mark += FUNDING_INTERVAL_MS
        if len(acct.executions) >= executions:
            break
        clock["t"] = t
        symbol = rng.choice(symbols)
        inst = INSTRUMENTS[symbol]
        pos = acct.position(symbol)
        price = price_of(symbol)
        lots = rng.randint(1, 20)
        cap_lots = int(Decimal(4000) / (price * inst.min_qty)) or 1
        lots = min(lots * max(cap_lots // 40, 1), cap_lots)
        qty = inst.min_qty * lots
        if pos.size != 0 and rng.random() < 0.45:
            side = "Sell" if pos.size > 0 else "Buy"
            qty = min(qty, abs(pos.size))
        else:
            side = rng.choice(("Buy", "Sell"))
        engine.partial_fills = rng.random() < 0.2 and len(acct.executions) + 2 <= executions
        n_orders += 1
        link = f"{link_prefix}-hist-{n_orders}"
        maker = rng.random() < 0.3
        try:
            if maker:
                engine.partial_fills = False
                offset = inst.tick_size * rng.randint(1, 20)
                limit = price - offset if side == "Buy" else price + offset
                req = OrderRequest(symbol, side, "Limit", qty, limit, "GTC", False, link)
                engine.create_order(acct.api_key, req, t)
                engine.on_price(symbol, limit, t)
            else:
                req = OrderRequest(symbol, side, "Market", qty, None, "IOC", False, link)
                engine.create_order(acct.api_key, req, t)
        except VenueError:
            continue
    engine.partial_fills = False
    return acct, engine


def seed_history(state_file: Path, spec: AccountSpec, months: int, executions: int, seed: int,
                 end_ms: int | None = None, link_prefix: str = "sim", stamp_clock: str = "wall") -> int:
    """`stamp_clock` "wall": the history ends now (hour-aligned) or at `end_ms`; "venue" (for a venue
    served with `--stamp-clock venue`): it ends at the venue's start time (the state file's venue time,
    else where a new venue starts), or at an earlier `end_ms`, so the venue's own fills come after it.
    Raises ValueError when the state file or `end_ms` does not fit."""
    paths = {s: PricePath(i, load_candles(i)) for s, i in INSTRUMENTS.items()}
    doc = read_state(state_file) or {"version": FORMAT_VERSION, "venue_time_ms": None, "seqs": {}, "priority": 0,
                                      "pins": {}, "accounts": []}
    conflict = stamp_clock_conflict(doc, stamp_clock)
    if conflict:
        raise ValueError(conflict)
    if stamp_clock == "venue":
        venue_start = doc.get("venue_time_ms") or min(p.start_ms for p in paths.values()) + WARMUP_MS
        end = end_ms if end_ms is not None else venue_start
        if end > venue_start:
            raise ValueError(f"--end-ms {end} is after the venue's start time {venue_start} (--stamp-clock venue)")
        doc["venue_time_ms"] = venue_start
    else:
        end = end_ms if end_ms is not None else wall_ms() // HOUR_MS * HOUR_MS
    acct, engine = generate_account_history(spec, months, executions, seed, end, paths, link_prefix)
    doc["stamp_clock"] = stamp_clock
    doc["accounts"] = [a for a in doc["accounts"] if a["api_key"] != spec.api_key] + [account_to_doc(acct)]
    doc["seqs"] = {s: max(doc["seqs"].get(s, 0), n) for s, n in engine.seqs.items()}
    doc["priority"] = doc["priority"] + engine.priority
    write_state(state_file, doc)
    return len(acct.executions)
