"""Venue state records. Executions are immutable facts; orders, positions and accounts evolve."""
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

ZERO = Decimal(0)
ACTIVE_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})


class VenueError(Exception):
    """A request refused with a Bybit retCode (never carries secrets)."""

    def __init__(self, ret_code: int, ret_msg: str) -> None:
        super().__init__(f"{ret_code} {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


@dataclass(frozen=True)
class SimExecution:
    exec_id: str
    symbol: str
    order_id: str
    order_link_id: str
    side: str
    exec_price: Decimal
    exec_qty: Decimal
    exec_value: Decimal
    exec_fee: Decimal
    fee_rate: Decimal
    exec_type: str
    exec_time_ms: int
    is_maker: bool
    closed_size: Decimal
    leaves_qty: Decimal
    order_price: Decimal
    order_qty: Decimal
    order_type: str
    stop_order_type: str
    mark_price: Decimal
    seq: int
    exec_pnl: Decimal
    venue_time_ms: int = 0  # venue clock when it happened (admin API only; Bybit rows carry wall execTime)


@dataclass
class Order:
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    order_type: str
    price: Decimal
    qty: Decimal
    time_in_force: str
    reduce_only: bool
    created_ms: int
    updated_ms: int
    priority: int
    last_price_on_created: Decimal
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    # conditional orders and a position's TP/SL/trailing stop (see stops.py)
    stop_order_type: str = ""  # "" | Stop | StopLoss | TakeProfit | TrailingStop
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0  # 1 rising, 2 falling
    trigger_by: str = ""
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    tpsl_mode: str = ""
    close_on_trigger: bool = False
    create_type: str = "CreateByUser"
    trail_distance: Decimal = ZERO
    active_price: Decimal = ZERO
    trail_active: bool = False
    trail_extreme: Decimal = ZERO

    def snapshot(self) -> Order:
        """A detached copy (cheaper than dataclasses.replace on the push path)."""
        clone = object.__new__(Order)
        clone.__dict__.update(self.__dict__)
        return clone

    @property
    def leaves_qty(self) -> Decimal:
        if self.status not in ACTIVE_STATUSES:
            return ZERO
        return self.qty - self.cum_qty

    @property
    def avg_price(self) -> Decimal:
        if self.cum_qty == 0:
            return ZERO
        return (self.cum_value / self.cum_qty).quantize(Decimal("0.00000001")).normalize()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def untriggered(self) -> bool:
        return self.status == "Untriggered"


@dataclass
class SimPosition:
    symbol: str
    size: Decimal = ZERO  # signed: > 0 long, < 0 short
    avg_price: Decimal = ZERO
    leverage: Decimal = Decimal(10)
    cum_realised: Decimal = ZERO
    cur_realised: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = -1
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    trailing_stop: Decimal = ZERO  # distance
    tp_order_id: str = ""
    sl_order_id: str = ""
    ts_order_id: str = ""

    @property
    def side(self) -> str:
        return "Buy" if self.size > 0 else "Sell" if self.size < 0 else ""


class ExecutionLog:
    """Executions of one account, kept sorted by (execTime, arrival) for Bybit's window queries."""

    def __init__(self) -> None:
        self.rows: list[SimExecution] = []
        self._keys: list[tuple[int, int]] = []
        self._arrival = 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, execution: SimExecution) -> None:
        key = (execution.exec_time_ms, self._arrival)
        self._arrival += 1
        at = bisect.bisect_right(self._keys, key)
        self._keys.insert(at, key)
        self.rows.insert(at, execution)

    def window_desc(self, start_ms: int, end_ms: int, before: tuple[int, int] | None = None,
                    ) -> Iterator[tuple[tuple[int, int], SimExecution]]:
        """Rows with start <= execTime <= end (and sort key below `before`, a page cursor), newest first,
        each with its stable sort key; lazily, so a page costs its own rows, not the whole window."""
        lo = bisect.bisect_left(self._keys, (start_ms, -1))
        hi = bisect.bisect_right(self._keys, (end_ms, 1 << 62))
        if before is not None:
            hi = min(hi, bisect.bisect_left(self._keys, before))
        for i in range(hi - 1, lo - 1, -1):
            yield self._keys[i], self.rows[i]


@dataclass
class SimAccount:
    api_key: str
    secret: str
    balance: Decimal
    leverage_default: Decimal = Decimal(10)
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    link_ids: dict[str, str] = field(default_factory=dict)
    resting: dict[str, Order] = field(default_factory=dict)  # active orders, an index over `orders`
    executions: ExecutionLog = field(default_factory=ExecutionLog)
    n_orders: int = 0
    n_execs: int = 0
    n_funding: int = 0
    cum_realised: Decimal = ZERO

    def position(self, symbol: str) -> SimPosition:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = SimPosition(symbol, leverage=self.leverage_default)
        return pos


@dataclass(frozen=True)
class FeeSchedule:
    maker: Decimal = Decimal("0.0002")
    taker: Decimal = Decimal("0.00055")


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    order_link_id: str
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    trigger_price: Decimal = ZERO  # > 0: a conditional order (stops.py)
    trigger_direction: int = 0
    trigger_by: str = ""
    close_on_trigger: bool = False


class Event(NamedTuple):
    """One change to push: a named tuple, built in half the time of a frozen dataclass (four per fill)."""

    api_key: str
    topic: str  # execution | order | position | wallet
    obj: Any


def stable_uuid(seed: int, *parts: object) -> str:
    """A UUID4-shaped id derived from the seed, so the same seed and orders give the same ids."""
    raw = bytearray(hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
