from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from shared.bybit.parse_rows import parse_position_page
from services.trade_sync.drift import Drift, compare, confirmed, exchange_views, redis_view, same_price

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"


def _exchange() -> dict:
    doc = json.loads((FIXTURES / "http_get_positions.json").read_text())
    positions, bad, _ = parse_position_page(doc["result"])
    assert not bad
    return exchange_views(positions)


def _redis_json(size: str, side: str, avg: str) -> str:
    return json.dumps({"size": size, "side": side, "avg_price": avg, "unrealized_pnl": "0", "mark_price": avg,
                       "liq_price": None, "updated_at": "2026-01-01T00:00:00Z"})


def test_recorded_positions_agree_with_what_the_listener_would_write() -> None:
    ex = _exchange()
    assert ex
    held = {s: _redis_json(str(v.size), "Buy" if v.size > 0 else "Sell", str(v.avg_price)) for s, v in ex.items()}
    assert compare(ex, held) == []


def test_each_kind_of_drift() -> None:
    ex = _exchange()
    symbol, view = next(iter(ex.items()))
    held = {
        "XRPUSDT": _redis_json("5", "Buy", "0.5"),  # the exchange is flat there
        "ADAUSDT": "not json",
    }
    drifts = {d.symbol: d for d in compare(ex, held)}
    assert drifts[symbol].kind == "missing_in_redis"
    assert drifts["XRPUSDT"].kind == "stale_in_redis" and drifts["XRPUSDT"].redis_size == Decimal(5)
    assert drifts["ADAUSDT"].kind == "unreadable"
    wrong = {symbol: _redis_json(str(view.size * 2), "Buy", str(view.avg_price))}
    assert [d.kind for d in compare({symbol: view}, wrong)] == ["size"]
    other_price = {symbol: _redis_json(str(view.size), "", str((view.avg_price or 0) + 100))}
    assert [d.kind for d in compare({symbol: view}, other_price)] == ["avg_price"]


def test_unsigned_size_with_a_sell_side_is_read_as_short() -> None:
    assert redis_view("BTCUSDT", _redis_json("0.5", "Sell", "100")).size == Decimal("-0.5")
    assert redis_view("BTCUSDT", _redis_json("-0.5", "Sell", "100")).size == Decimal("-0.5")


def test_average_price_rounded_by_rest_is_not_drift() -> None:
    assert same_price(Decimal("79492.49"), Decimal("79492.4901864"))
    assert same_price(Decimal("1650.32"), Decimal("1650.31677362"))
    assert not same_price(Decimal("1650.32"), Decimal("1650.30"))


def test_only_drift_seen_twice_is_confirmed() -> None:
    a = Drift("BTCUSDT", "size", Decimal(1), Decimal(2))
    b = Drift("ETHUSDT", "missing_in_redis", Decimal(1), None)
    assert confirmed([a, b], [b]) == [b]
    assert confirmed([a], [b]) == []
    assert b.as_dict()["redis_size"] is None and b.as_dict()["exchange_size"] == "1"
