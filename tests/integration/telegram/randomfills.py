"""Seeded random fill histories for the database-backed tests."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from shared.analytics.fills import LedgerFill

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)


def random_history(seed: int, n: int, *, bots: tuple[str, ...] = ("lxalgo_001", "momentum_001"),
                   symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), days: int = 5) -> list[LedgerFill]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.choice(["Trade"] * 10 + ["Funding", "AdlTrade"])
        qty = Decimal(rnd.randint(1, 3)) if rnd.random() < 0.6 else Decimal(rnd.randint(1, 3000)) / 1000
        out.append(LedgerFill(
            bot_id=rnd.choice(bots), symbol=rnd.choice(symbols), exec_id=f"r{seed}-{i:05d}", exec_type=kind,
            side=rnd.choice(["Buy", "Sell"]), exec_price=Decimal(rnd.randint(9000, 11000)) / 100, exec_qty=qty,
            exec_time=T0 + timedelta(minutes=rnd.randint(0, days * 1440)),
            commission=Decimal(rnd.randint(-20, 300)) / 10000, seq=rnd.choice([None, 1, 2, 3]),
        ))
    return out
