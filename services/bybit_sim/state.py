"""Venue state <-> JSON document, so a restarted venue keeps accounts, orders and executions."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.bybit_sim.models import SimAccount, SimExecution, Order, SimPosition
from shared.private_file import private_writer

FORMAT_VERSION = 1
_EXEC_FIELDS = [f.name for f in fields(SimExecution)]
_DEC_EXEC = {f.name for f in fields(SimExecution) if f.type in ("Decimal", Decimal)}


def _enc(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


def _execution_to_row(e: SimExecution) -> list[Any]:
    return [_enc(getattr(e, n)) for n in _EXEC_FIELDS]


def _execution_from_row(row: list[Any]) -> SimExecution:
    # rows written before `venue_time_ms` existed are one shorter (it defaults to 0)
    kw = {n: (Decimal(v) if n in _DEC_EXEC else v) for n, v in zip(_EXEC_FIELDS[:len(row)], row, strict=True)}
    return SimExecution(**kw)


def _dc_to_dict(obj: Any) -> dict[str, Any]:
    return {k: _enc(v) for k, v in asdict(obj).items()}


def _dc_from_dict(cls: type, raw: dict[str, Any]) -> Any:
    kinds = {f.name: f.type for f in fields(cls)}
    return cls(**{k: (Decimal(v) if kinds[k] in ("Decimal", Decimal) else v) for k, v in raw.items()})


def account_to_doc(a: SimAccount) -> dict[str, Any]:
    return {
        "api_key": a.api_key, "secret": a.secret, "balance": str(a.balance),
        "leverage_default": str(a.leverage_default), "cum_realised": str(a.cum_realised),
        "n_orders": a.n_orders, "n_execs": a.n_execs, "n_funding": a.n_funding,
        "positions": [_dc_to_dict(p) for p in a.positions.values()],
        "orders": [_dc_to_dict(o) for o in a.orders.values()],
        "executions": [_execution_to_row(e) for e in a.executions.rows],
    }


def account_from_doc(d: dict[str, Any]) -> SimAccount:
    a = SimAccount(d["api_key"], d["secret"], Decimal(d["balance"]), Decimal(d["leverage_default"]))
    a.cum_realised = Decimal(d["cum_realised"])
    a.n_orders, a.n_execs, a.n_funding = d["n_orders"], d["n_execs"], d["n_funding"]
    for p in d["positions"]:
        pos = _dc_from_dict(SimPosition, p)
        a.positions[pos.symbol] = pos
    for o in d["orders"]:
        order = _dc_from_dict(Order, o)
        a.orders[order.order_id] = order
        if order.order_link_id:
            a.link_ids[order.order_link_id] = order.order_id
    for row in d["executions"]:
        a.executions.add(_execution_from_row(row))
    return a


def write_state(path: Path, doc: dict[str, Any]) -> None:
    """Atomic write: a crash mid-write leaves the previous snapshot intact. Mode 0600 from the
    first byte (the document holds the accounts' API secrets)."""
    with private_writer(path) as fh:
        json.dump(doc, fh, separators=(",", ":"))


def read_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"state file {path} has unsupported version {doc.get('version')}")
    return doc


def stamp_clock_conflict(doc: dict[str, Any] | None, stamp_clock: str) -> str | None:
    """Why a state document cannot be resumed with `--stamp-clock stamp_clock`, or None. Its orders and
    executions carry the clock they were stamped with (documents without `stamp_clock`: wall), and
    mixing wall-clock stamps (now) with venue-clock ones (the replayed candles' time) would send
    createdTime/execTime backwards or forwards across the restart."""
    if doc is None:
        return None
    held = doc.get("stamp_clock", "wall")
    if held == stamp_clock or not any(a["orders"] or a["executions"] for a in doc["accounts"]):
        return None
    return (f"the state file holds orders/executions stamped with the {held} clock; "
            f"--stamp-clock {stamp_clock} would mix clocks (use --stamp-clock {held} or a new state file)")


def wall_replay_conflict(doc: dict[str, Any] | None, wall_replay: bool) -> str | None:
    """Why a state document cannot be resumed with (or without) `--wall-replay`, or None. A wall-replay
    document records its week shift (`wall_replay_shift_ms`) and its venue time is wall time; any other
    document that has run a venue (`venue_time_ms`) holds venue time in the replayed past at its own speed.
    A `seed-history` document that no venue has run yet (wall stamps, no venue time) suits both."""
    if doc is None:
        return None
    held = "wall_replay_shift_ms" in doc
    if wall_replay and not held and doc.get("venue_time_ms") is not None:
        return ("the state file was written by a venue run without --wall-replay (its venue time is in the "
                "replayed past); use a new state file for --wall-replay")
    if not wall_replay and held:
        return "the state file was written by a --wall-replay venue; resume it with --wall-replay or use a new one"
    return None
