"""Execution order of REST rows, as `trading.fills`' PnL triggers replay them (pure).

The triggers order fills by (exec_time, COALESCE(seq, 0), exec_id in byte order); Python compares
`str` by code point, which is the same order as UTF-8 bytes. A row whose time or seq is unreadable
sorts first: the listener rejects it anyway, so its place does not matter.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def execution_key(row: Mapping[str, Any]) -> tuple[int, int, str]:
    try:
        exec_time = int(str(row.get("execTime")))
        raw_seq = row.get("seq")
        seq = 0 if raw_seq is None or raw_seq == "" else int(str(raw_seq))
    except ValueError:
        return (-1, 0, str(row.get("execId", "")))
    return (exec_time, seq, str(row.get("execId", "")))


def in_execution_order(rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The rows sorted ascending by execution key (stable: equal keys keep their order)."""
    return sorted(rows, key=execution_key)
