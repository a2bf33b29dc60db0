"""Hand-made and generated fill sequences for the accounting tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

from shared.analytics.fills import LedgerFill

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def fill(
    n: int,
    side: str,
    qty: str,
    price: str,
    fee: str = "0",
    *,
    minutes: float | None = None,
    exec_type: str = "Trade",
    symbol: str = "BTCUSDT",
    bot_id: str = "momentum_001",
    seq: int | None = None,
) -> LedgerFill:
    return LedgerFill(
        bot_id=bot_id,
        symbol=symbol,
        exec_id=f"e{n:04d}",
        exec_type=exec_type,
        side=side,
        exec_price=Decimal(price),
        exec_qty=Decimal(qty),
        exec_time=T0 + timedelta(minutes=n if minutes is None else minutes),
        commission=Decimal(fee),
        seq=n if seq is None else seq,
    )


@st.composite
def fill_sequences(draw: st.DrawFn) -> list[LedgerFill]:
    """Random trading over two symbols and several days, with funding, ADL and equal timestamps."""
    n = draw(st.integers(min_value=1, max_value=40))
    out: list[LedgerFill] = []
    for i in range(n):
        kind = draw(st.sampled_from(["Trade"] * 8 + ["Funding", "AdlTrade"]))
        side = draw(st.sampled_from(["Buy", "Sell"]))
        qty = Decimal(draw(st.integers(min_value=1, max_value=5000))) / 1000
        # Small integer quantities make exact flat points (round trips) common.
        if draw(st.booleans()):
            qty = Decimal(draw(st.integers(min_value=1, max_value=3)))
        price = Decimal(draw(st.integers(min_value=9000, max_value=11000))) / 100
        fee = Decimal(draw(st.integers(min_value=-50, max_value=500))) / 10000
        minute = draw(st.integers(min_value=0, max_value=6 * 24 * 60))
        out.append(
            LedgerFill(
                bot_id="lxalgo_001",
                symbol=draw(st.sampled_from(["BTCUSDT", "ETHUSDT"])),
                exec_id=f"x{i:03d}",
                exec_type=kind,
                side=side,
                exec_price=price,
                exec_qty=qty,
                exec_time=T0 + timedelta(minutes=minute),
                commission=fee,
                seq=draw(st.none() | st.integers(min_value=0, max_value=3)),
            )
        )
    return out
