"""The chaos run's pure parts: its seeded schedule, and that each of its checks fails when it should."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.support.chaos.checks import check_feed, check_ledger
from tests.support.chaos.schedule import KINDS, QUIET_TAIL_S, SILENCE_S, WINDOW, draw_schedule

BOTS = ["shortseller_001", "lxalgo_001", "momentum_001"]


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another() -> None:
    a, b = draw_schedule(7, 100, 600, BOTS), draw_schedule(7, 100, 600, BOTS)
    assert a == b and a != draw_schedule(8, 100, 600, BOTS)
    assert len(a) == 100 and [f.n for f in a] == list(range(1, 101))
    assert [f.at_s for f in a] == sorted(f.at_s for f in a)
    assert all(WINDOW[0] * 600 <= f.at_s <= WINDOW[1] * 600 for f in a)


def test_every_fault_ends_before_the_quiet_tail_of_the_stream() -> None:
    for seed in range(20):
        for f in draw_schedule(seed, 100, 600, BOTS):
            assert f.at_s + f.seconds <= 600 - QUIET_TAIL_S + 0.05, f
        assert all(f.at_s + f.seconds <= 100 - 20 + 0.05 for f in draw_schedule(seed, 13, 100, BOTS))


def test_every_kind_is_drawn_once_there_are_enough_faults() -> None:
    assert set(f.kind for f in draw_schedule(3, len(KINDS), 75, BOTS)) == set(KINDS)
    faults = draw_schedule(3, 100, 600, BOTS)
    assert set(f.kind for f in faults) == set(KINDS)
    assert all(f.seconds == SILENCE_S for f in faults if f.kind == "ws_silence")
    assert all(f.target is None for f in faults if f.kind.startswith(("kill_", "restart_", "drop_")))
    assert all(500 <= f.status <= 599 for f in faults)
    assert all(f.target is None for f in faults if f.channel == "public")  # that connection has no key


def venue_row(exec_id: str, qty: str = "0.001") -> dict[str, Any]:
    return {"execId": exec_id, "symbol": "BTCUSDT", "orderId": "o1", "orderLinkId": "chaos0-gen-1", "side": "Buy",
            "execPrice": "100000", "execQty": qty, "execValue": "100", "execFee": "0.055", "feeRate": "0.00055",
            "closedSize": "0", "execPnl": "0", "leavesQty": "0", "orderPrice": "100000", "orderQty": qty,
            "markPrice": "100000", "execType": "Trade", "orderType": "Market", "stopOrderType": "",
            "feeCurrency": "USDT", "isMaker": False, "seq": "5", "execTime": "1765000000000"}


def stored_row(exec_id: str, bot_id: str = "lxalgo_001", qty: str = "0.001") -> dict[str, Any]:
    return {"exec_id": exec_id, "bot_id": bot_id, "symbol": "BTCUSDT", "order_id": "o1",
            "client_order_id": "chaos0-gen-1", "side": "Buy", "exec_price": Decimal("100000"),
            "exec_qty": Decimal(qty), "exec_value": Decimal("100"), "commission": Decimal("0.055"),
            "fee_rate": Decimal("0.00055"), "closed_size": Decimal("0"), "exec_pnl": Decimal("0"),
            "leaves_qty": Decimal("0"), "order_price": Decimal("100000"), "order_qty": Decimal(qty),
            "mark_price": Decimal("100000"), "exec_type": "Trade", "order_type": "Market", "stop_order_type": None,
            "fee_currency": "USDT", "is_maker": False, "seq": 5,
            "exec_time": datetime.fromtimestamp(1765000000, UTC)}


def test_the_ledger_check_passes_an_exact_copy_and_names_each_kind_of_difference() -> None:
    truth = {"lxalgo_001": [venue_row("a"), venue_row("b"), venue_row("c")]}
    assert check_ledger(truth, {"lxalgo_001": [stored_row("a"), stored_row("b"), stored_row("c")]}).ok
    res = check_ledger(truth, {"lxalgo_001": [stored_row("a"), stored_row("a"), stored_row("c", qty="0.002"),
                                              stored_row("z")],
                               "momentum_001": [stored_row("y", "momentum_001")]})
    assert not res.ok
    assert (res.lost, res.duplicated, sorted(res.unknown)) == (["b"], ["a"], ["y", "z"])
    assert any(d.startswith("c.exec_qty") for d in res.field_diffs)


def test_the_feed_check_counts_repeats_and_names_what_was_never_announced() -> None:
    truth = {"lxalgo_001": [venue_row("a"), venue_row("b")], "momentum_001": [venue_row("m")]}
    full = check_feed("f", truth, {"lxalgo_001": Counter({"a": 2, "b": 1}), "momentum_001": Counter({"m": 1})})
    assert (full.missing, full.announced, full.repeats, full.wrong_bot, full.coverage) == ([], 3, 1, 0, 1.0)
    part = check_feed("f", truth, {"lxalgo_001": Counter({"a": 1, "m": 1})})
    assert (part.missing, part.announced, part.wrong_bot) == (["b", "m"], 1, 1)
