from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from services.trade_sync.order import execution_key, in_execution_order

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit_v5"


def _row(exec_id: str, exec_time: int, seq: object = None) -> dict[str, object]:
    row: dict[str, object] = {"execId": exec_id, "execTime": str(exec_time)}
    if seq is not None:
        row["seq"] = seq
    return row


def test_rest_page_newest_first_is_sent_oldest_first() -> None:
    page = json.loads((FIXTURES / "http_get_executions.json").read_text())["result"]["list"]
    ordered = in_execution_order(page)
    assert sorted(r["execId"] for r in ordered) == sorted(r["execId"] for r in page)
    times = [int(r["execTime"]) for r in ordered]
    assert times == sorted(times)


def test_ties_on_time_go_by_seq_then_exec_id_in_byte_order() -> None:
    rows = [_row("b", 10, 2), _row("a", 10, 2), _row("z", 10, 1), _row("y", 9, 99), _row("B", 10, 2)]
    assert [r["execId"] for r in in_execution_order(rows)] == ["y", "z", "B", "a", "b"]


def test_missing_seq_counts_as_zero_like_the_trigger() -> None:
    rows = [_row("f2", 10, 1), _row("funding", 10), _row("f1", 10, ""), _row("f0", 10, "0")]
    assert [r["execId"] for r in in_execution_order(rows)] == ["f0", "f1", "funding", "f2"]
    assert execution_key(_row("x", 5, "7")) == (5, 7, "x")


def test_unreadable_rows_sort_first_without_failing() -> None:
    rows = [_row("ok", 1, 1), {"execId": "bad", "execTime": "soon"}, {"execId": "worse", "execTime": "1", "seq": "x"}]
    assert [r["execId"] for r in in_execution_order(rows)] == ["bad", "worse", "ok"]


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5), st.text(min_size=1, max_size=4)), max_size=40))
def test_order_matches_the_trigger_key_on_utf8_bytes(keys: list[tuple[int, int, str]]) -> None:
    rows = [_row(e, t, s) for t, s, e in keys]
    ordered = in_execution_order(rows)
    as_bytes = [(int(r["execTime"]), int(r["seq"]), r["execId"].encode()) for r in ordered]
    assert as_bytes == sorted(as_bytes)
