"""The push path's JSON text renderers (frames.py) against json.dumps of render.py's row dicts."""
from __future__ import annotations

import copy
import json
import random
from decimal import Decimal

from services.bybit_sim.engine import Engine, Event, OrderRequest
from services.bybit_sim.frames import (execution_ws_json, order_ws_json, position_ws_json, private_frame,
                                       wallet_ws_json)
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.models import SimAccount, SimExecution, Order, SimPosition
from services.bybit_sim.render import execution_ws, num, order_ws, position_ws, wallet_ws

dumps = json.JSONEncoder(separators=(",", ":")).encode
NOW = 1_760_000_000_000


def test_num_matches_normalize_format_for_awkward_values() -> None:
    rng = random.Random(5)
    values = [Decimal(t) for t in ("0", "-0", "0.000", "-0.00", "1", "10", "100.00", "1E+3", "1.0E-9", "-0.5000",
                                   "123456789012345678901234567.10", "1234567890123456789012345678.5",
                                   "0.0000001", "65000.10", "-12.3400", "NaN", "Infinity", "-Infinity")]
    for _ in range(5000):
        digits = str(rng.randrange(10 ** rng.randrange(1, 34)))
        values.append(Decimal(f"{rng.choice('-+')}{digits}E{rng.randrange(-40, 12)}"))
        values.append(Decimal(rng.randrange(-10**6, 10**6)) / Decimal(rng.choice([1, 3, 7, 100, 1000])))
    for d in values:
        expected = "0" if d == 0 else format(d.normalize(), "f")
        assert num(d) == expected, d


class Prices:
    def __init__(self) -> None:
        self.p = {"BTCUSDT": Decimal("65000.10"), "ETHUSDT": Decimal("3000.55"), "SOLUSDT": Decimal("150.123")}

    def __call__(self, symbol: str) -> Decimal:
        return self.p[symbol]


def _events() -> list[tuple[Engine, Event]]:
    """Engine events of many kinds, orders and positions copied as each is made (later fills change them):
    market and limit fills, partial fills, cancels, reduce-only, funding, a leveraged account whose equity
    goes negative, link ids that need JSON escaping."""
    prices = Prices()
    kept: list[tuple[Engine, Event]] = []
    for partial in (False, True):
        eng = Engine(3, prices, partial_fills=partial)

        def keep(evs: list[Event], eng: Engine = eng) -> None:
            kept.extend((eng, Event(e.api_key, e.topic, copy.copy(e.obj) if e.topic in ("order", "position")
                                    else e.obj)) for e in evs)

        eng.accounts["a"] = SimAccount("a", "s", Decimal("1000000"))
        eng.accounts["poor"] = SimAccount("poor", "s", Decimal("100"))
        n = 0
        for symbol, inst in INSTRUMENTS.items():
            for i in range(6):
                req = OrderRequest(symbol, "Buy" if i % 3 else "Sell", "Market", inst.min_qty * (i + 1), None, "IOC",
                                   False, f'gen-{n}"\\\u00e9\n\u2028')
                keep(eng.create_order("a", req, NOW + n)[1])
                n += 1
            p = prices.p[symbol]
            for side, px, tif, reduce in (("Buy", p - inst.tick_size * 5, "GTC", False),
                                          ("Sell", p + inst.tick_size * 5, "GTC", False),
                                          ("Sell", p - inst.tick_size, "PostOnly", False),
                                          ("Buy", p - inst.tick_size * 9, "IOC", False),
                                          ("Sell", p + inst.tick_size * 2, "GTC", True)):
                away = inst.tick_size * 100 * (1 if side == "Buy" else -1)
                req = OrderRequest(symbol, side, "Limit", inst.min_qty * 4, px, tif, reduce, f"lim-{n}",
                                   px + away, px - away)
                keep(eng.create_order("a", req, NOW + n)[1])
                n += 1
            # a conditional order, a position's TP/SL/trailing stop set, fired and cleared
            keep(eng.create_order("a", OrderRequest(symbol, "Buy", "Limit", inst.min_qty, p, "GTC", False, f"cond-{n}",
                                                    trigger_price=p + inst.tick_size * 8, trigger_direction=1),
                                  NOW + n)[1])
            side = eng.accounts["a"].position(symbol).side
            sign = 1 if side == "Buy" else -1
            keep(eng.stops.set_trading_stop("a", symbol, p + sign * inst.tick_size * 35, p - sign * inst.tick_size * 35,
                                            inst.tick_size * 20, p + sign * inst.tick_size * 3, "MarkPrice", "",
                                            NOW + n))
            for move in (-7, 9, -30, 40):
                prices.p[symbol] = p + inst.tick_size * move
                keep(eng.on_price(symbol, prices.p[symbol], NOW + n))
                n += 1
            keep(eng.settle_funding(symbol, prices.p[symbol], Decimal("0.0001"), NOW + n))
            keep(eng.settle_funding(symbol, prices.p[symbol], Decimal("-0.00037"), NOW + n))
            keep(eng.set_leverage("a", symbol, Decimal("3"), NOW + n))
        keep(eng.cancel_all("a", None, NOW + n)[1])
        keep(eng.set_leverage("poor", "BTCUSDT", Decimal("100"), NOW))
        keep(eng.create_order("poor", OrderRequest("BTCUSDT", "Buy", "Market", Decimal("0.1"), None, "IOC", False, ""),
                              NOW)[1])
        prices.p["BTCUSDT"] = Decimal("60000.00")
        keep([Event("poor", "position", eng.accounts["poor"].position("BTCUSDT")),
              Event("poor", "wallet", eng.accounts["poor"]),
              Event("poor", "position", eng.accounts["poor"].position("SOLUSDT"))])
    return kept


def test_rows_are_byte_identical_to_dumps_of_the_row_dicts() -> None:
    kinds = set()
    for eng, ev in _events():
        obj = ev.obj
        if isinstance(obj, SimExecution):
            assert execution_ws_json(obj) == dumps(execution_ws(obj))
            kinds.add(obj.exec_type)
        elif isinstance(obj, Order):
            assert order_ws_json(obj) == dumps(order_ws(obj))
            kinds.add(obj.status)
        elif isinstance(obj, SimPosition):
            assert position_ws_json(eng, obj) == dumps(position_ws(eng, obj))
            kinds.add("short" if obj.size < 0 else "long" if obj.size > 0 else "flat")
        else:
            assert isinstance(obj, SimAccount)
            assert wallet_ws_json(eng, obj) == dumps(wallet_ws(eng, obj))
            kinds.add("negative equity" if eng.equity(obj) <= 0 else "wallet")
    assert {"Trade", "Funding", "Filled", "PartiallyFilled", "New", "Cancelled", "short", "long", "flat",
            "negative equity", "wallet", "Untriggered", "Triggered", "Deactivated"} <= kinds


def test_frame_wraps_rows_like_dumps() -> None:
    rows = [e.obj for _, e in _events() if isinstance(e.obj, SimExecution)][:5]
    text = private_frame("ab12000000000007", "execution", NOW, [execution_ws_json(e) for e in rows])
    assert text == dumps({"id": "ab12000000000007", "topic": "execution", "creationTime": NOW,
                          "data": [execution_ws(e) for e in rows]})
    assert private_frame("x", "wallet", NOW, []) == dumps({"id": "x", "topic": "wallet", "creationTime": NOW,
                                                           "data": []})
