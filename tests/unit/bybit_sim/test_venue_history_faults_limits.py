from __future__ import annotations

from decimal import Decimal

import pytest

from services.bybit_sim.admin import _is_loopback
from services.bybit_sim.candles import PricePath, load_candles
from services.bybit_sim.faults import FaultBook, parse_fault
from services.bybit_sim.history import generate_account_history
from services.bybit_sim.instruments import INSTRUMENTS
from services.bybit_sim.market import FUNDING_INTERVAL_MS
from services.bybit_sim.models import VenueError
from services.bybit_sim.ratelimit import WindowCounter
from services.bybit_sim.venue import AccountSpec

END = 1_790_000_000_000


@pytest.fixture(scope="module")
def paths() -> dict[str, PricePath]:
    return {s: PricePath(i, load_candles(i)) for s, i in INSTRUMENTS.items()}


def test_history_is_deterministic_consistent_and_in_range(paths: dict[str, PricePath]) -> None:
    spec = AccountSpec("k", "s", Decimal(100000))
    one, _ = generate_account_history(spec, 1, 1500, 7, END, paths)
    two, _ = generate_account_history(spec, 1, 1500, 7, END, paths)
    other, _ = generate_account_history(spec, 1, 1500, 8, END, paths)
    assert one.executions.rows == two.executions.rows
    assert one.executions.rows != other.executions.rows
    rows = one.executions.rows
    assert len(rows) == 1500 and len({e.exec_id for e in rows}) == 1500
    assert all(END - 30 * 86_400_000 <= e.exec_time_ms < END for e in rows)
    funding = [e for e in rows if e.exec_type == "Funding"]
    assert funding and all(e.exec_time_ms % FUNDING_INTERVAL_MS == 0 for e in funding)
    assert {e.is_maker for e in rows if e.exec_type == "Trade"} == {True, False}
    # The wallet is the starting balance plus every execution's PnL minus its fee.
    assert one.balance == Decimal(100000) + sum(e.exec_pnl - e.exec_fee for e in rows)
    # Positions equal the signed sum of trade quantities.
    for symbol, pos in one.positions.items():
        signed = sum((e.exec_qty if e.side == "Buy" else -e.exec_qty) for e in rows
                     if e.symbol == symbol and e.exec_type == "Trade")
        assert pos.size == signed


def test_fault_parsing_and_scoping() -> None:
    f = parse_fault({"kind": "silence", "seconds": 2, "api_key": "a"}, 1000)
    book = FaultBook()
    book.add(f)
    assert book.active("silence", "a", 2999) is f
    assert book.active("silence", "b", 2000) is None
    assert book.active("silence", "a", 3000) is None and book.faults == []
    for bad in ({"kind": "nope"}, {"kind": "delay", "seconds": 1, "delay_ms": 0}, {"kind": "reset", "channel": "x"},
                {"kind": "rate_limit", "seconds": True}, "text"):
        with pytest.raises(VenueError):
            parse_fault(bad, 0)


def test_window_counter() -> None:
    c = WindowCounter(2, 1000)
    assert [c.hit("k", 5000).allowed, c.hit("k", 5001).allowed, c.hit("k", 5002).allowed] == [True, True, False]
    v = c.hit("k", 5999)
    assert (v.allowed, v.remaining, v.reset_ms) == (False, 0, 6000)
    assert c.hit("k", 6000).remaining == 1 and c.hit("other", 5500).allowed


def test_loopback_detection() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.8.9.1")
    assert not _is_loopback("10.0.0.5") and not _is_loopback(None) and not _is_loopback("garbage")
