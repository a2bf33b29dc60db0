"""Exchange positions against the Redis positions the listener keeps (pure)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.bybit.records import PositionSnapshot


@dataclass(frozen=True)
class PositionView:
    symbol: str
    size: Decimal  # signed: > 0 long, < 0 short
    avg_price: Decimal | None
    seq: int | None = None


@dataclass(frozen=True)
class Drift:
    """One symbol whose Redis position disagrees with the exchange."""

    symbol: str
    kind: str  # missing_in_redis | stale_in_redis | size | avg_price | unreadable
    exchange_size: Decimal
    redis_size: Decimal | None
    exchange_avg_price: Decimal | None = None
    redis_avg_price: Decimal | None = None

    def as_dict(self) -> dict[str, str | None]:
        def s(v: Decimal | None) -> str | None:
            return None if v is None else str(v)
        return {"symbol": self.symbol, "kind": self.kind, "exchange_size": s(self.exchange_size),
                "redis_size": s(self.redis_size), "exchange_avg_price": s(self.exchange_avg_price),
                "redis_avg_price": s(self.redis_avg_price)}


def exchange_views(snapshots: Iterable[PositionSnapshot]) -> dict[str, PositionView]:
    """Open positions only: a flat position is what an absent Redis key means."""
    return {p.symbol: PositionView(p.symbol, p.signed_size, p.avg_price, p.seq)
            for p in snapshots if not p.is_flat}


def redis_view(symbol: str, raw: str) -> PositionView:
    """`position:{bot}:{symbol}` JSON -> view; ValueError when it cannot be read."""
    try:
        doc = json.loads(raw)
        size = Decimal(str(doc["size"]))
        avg = doc.get("avg_price")
        avg_price = None if avg in (None, "") else Decimal(str(avg))
    except (ValueError, KeyError, TypeError, InvalidOperation):
        raise ValueError(f"the Redis position of {symbol} is not readable JSON") from None
    if doc.get("side") == "Sell" and size > 0:
        size = -size  # tolerate an unsigned size with a side
    seq = doc.get("seq")
    return PositionView(symbol, size, avg_price, seq if isinstance(seq, int) else None)


def same_price(exchange: Decimal, held: Decimal) -> bool:
    """Equal within one unit of the exchange's last digit: REST rounds the average price to the tick,
    the WebSocket push the listener stored may carry more digits."""
    unit = Decimal(1).scaleb(exchange.as_tuple().exponent) if isinstance(exchange.as_tuple().exponent, int) else 0
    return abs(exchange - held) <= unit


def compare(exchange: Mapping[str, PositionView], redis_raw: Mapping[str, str]) -> list[Drift]:
    """Every symbol where Redis does not say what the exchange says, sorted by symbol."""
    drifts: list[Drift] = []
    for symbol in sorted(set(exchange) | set(redis_raw)):
        ex = exchange.get(symbol)
        ex_size = ex.size if ex else Decimal(0)
        ex_avg = ex.avg_price if ex else None
        raw = redis_raw.get(symbol)
        if raw is None:
            drifts.append(Drift(symbol, "missing_in_redis", ex_size, None, ex_avg, None))
            continue
        try:
            rv = redis_view(symbol, raw)
        except ValueError:
            drifts.append(Drift(symbol, "unreadable", ex_size, None, ex_avg, None))
            continue
        if ex is None:
            drifts.append(Drift(symbol, "stale_in_redis", ex_size, rv.size, None, rv.avg_price))
        elif rv.size != ex_size:
            drifts.append(Drift(symbol, "size", ex_size, rv.size, ex_avg, rv.avg_price))
        elif ex_avg is not None and rv.avg_price is not None and not same_price(ex_avg, rv.avg_price):
            drifts.append(Drift(symbol, "avg_price", ex_size, rv.size, ex_avg, rv.avg_price))
    return drifts


def confirmed(first: Iterable[Drift], second: Iterable[Drift]) -> list[Drift]:
    """Drift seen in two reads a moment apart: a position that merely moved in between is not drift."""
    before = {(d.symbol, d.kind) for d in first}
    return [d for d in second if (d.symbol, d.kind) in before]
