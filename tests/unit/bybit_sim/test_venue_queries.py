from __future__ import annotations

from decimal import Decimal

import pytest

from services.bybit_sim.models import SimAccount, SimExecution, VenueError
from services.bybit_sim.queries import WEEK_MS, Params, list_executions, time_window

NOW = 1_790_000_000_000


def _exec(n: int, t: int, symbol: str = "BTCUSDT") -> SimExecution:
    return SimExecution(f"id-{n}", symbol, "o", "", "Buy", Decimal("100"), Decimal("0.001"), Decimal("0.1"),
                     Decimal("0"), Decimal("0.00055"), "Trade", t, False, Decimal(0), Decimal(0), Decimal("100"),
                     Decimal("0.001"), "Market", "UNKNOWN", Decimal("100"), n, Decimal(0))


def test_window_defaults_and_limits() -> None:
    assert time_window(Params({}), NOW) == (NOW - WEEK_MS, NOW)
    assert time_window(Params({"startTime": "1000"}), NOW) == (max(1000, NOW - 2 * 365 * 86_400_000), 1000 + WEEK_MS)
    assert time_window(Params({"endTime": str(NOW - 5)}), NOW) == (NOW - 5 - WEEK_MS, NOW - 5)
    with pytest.raises(VenueError) as err:
        time_window(Params({"startTime": str(NOW - WEEK_MS - 1), "endTime": str(NOW)}), NOW)
    assert err.value.ret_code == 10001


def test_params_reject_malformed_values() -> None:
    for raw, call in (({"limit": "x"}, lambda p: p.int("limit")), ({"qty": "1e999999"}, lambda p: p.decimal("qty")),
                      ({"qty": "NaN"}, lambda p: p.decimal("qty")), ({"symbol": ["a"]}, lambda p: p.str("symbol")),
                      ({"reduceOnly": "maybe"}, lambda p: p.bool("reduceOnly")), ({}, lambda p: p.linear())):
        with pytest.raises(VenueError) as err:
            call(Params(raw))
        assert err.value.ret_code == 10001


def test_cursor_pages_are_disjoint_newest_first_and_stable_for_equal_times() -> None:
    acct = SimAccount("k", "s", Decimal(0))
    for n in range(25):
        acct.executions.add(_exec(n, NOW - 1000 + n // 5))  # five executions share each timestamp
    ids, cursor = [], None
    while True:
        page = list_executions(acct, Params({"category": "linear", "limit": "7", "cursor": cursor}), NOW)
        ids += [r["execId"] for r in page["list"]]
        cursor = page["nextPageCursor"] or None
        if cursor is None:
            break
    assert ids == [f"id-{n}" for n in reversed(range(25))]


def test_filters() -> None:
    acct = SimAccount("k", "s", Decimal(0))
    acct.executions.add(_exec(1, NOW - 10, "ETHUSDT"))
    acct.executions.add(_exec(2, NOW - 5))
    page = list_executions(acct, Params({"category": "linear", "symbol": "ETHUSDT"}), NOW)
    assert [r["execId"] for r in page["list"]] == ["id-1"] and page["nextPageCursor"] == ""
