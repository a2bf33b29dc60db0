"""Linear perpetuals the venue lists, with Bybit's real filters (pure data)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class SimInstrument:
    symbol: str
    base_coin: str
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_mkt_qty: Decimal
    max_leverage: Decimal
    min_price: Decimal
    max_price: Decimal
    price_scale: int
    launch_time_ms: int

    def on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def on_step(self, qty: Decimal) -> bool:
        return qty % self.qty_step == 0

    def price_str(self, price: Decimal) -> str:
        return str(price.quantize(self.tick_size))

    def qty_str(self, qty: Decimal) -> str:
        return str(qty.quantize(self.qty_step))


# Values as Bybit lists them for these perpetuals (instruments-info, category=linear).
INSTRUMENTS: dict[str, SimInstrument] = {
    "BTCUSDT": SimInstrument("BTCUSDT", "BTC", Decimal("0.10"), Decimal("0.001"), Decimal("0.001"),
                          Decimal("1190.000"), Decimal("119.000"), Decimal("100.00"), Decimal("0.10"),
                          Decimal("1999999.80"), 2, 1584230400000),
    "ETHUSDT": SimInstrument("ETHUSDT", "ETH", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"),
                          Decimal("7240.00"), Decimal("724.00"), Decimal("100.00"), Decimal("0.01"),
                          Decimal("199999.98"), 2, 1615766400000),
    "SOLUSDT": SimInstrument("SOLUSDT", "SOL", Decimal("0.010"), Decimal("0.1"), Decimal("0.1"),
                          Decimal("79770.0"), Decimal("7977.0"), Decimal("100.00"), Decimal("0.010"),
                          Decimal("19999.980"), 3, 1634256000000),
}
