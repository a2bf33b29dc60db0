"""Fault injection state: which misbehaviour is active, for whom, until when (pure; times passed in)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.bybit_sim.models import VenueError

TIMED_KINDS = frozenset({"silence", "duplicate", "reorder", "delay", "reject_auth", "rate_limit", "http_5xx"})
INSTANT_KINDS = frozenset({"reset", "close"})


@dataclass(frozen=True)
class Fault:
    kind: str
    until_ms: int
    api_key: str | None
    delay_ms: int = 0
    status: int = 503
    channel: str = "all"  # private | public | all (connection faults)

    def applies(self, api_key: str | None, now_ms: int) -> bool:
        return now_ms < self.until_ms and (self.api_key is None or self.api_key == api_key)


def parse_fault(body: Any, now_ms: int) -> Fault:
    """Admin request -> Fault; bad input is a 10001 so the admin client sees what was wrong."""
    if not isinstance(body, dict):
        raise VenueError(10001, "body must be a JSON object")
    kind = body.get("kind")
    if kind not in TIMED_KINDS | INSTANT_KINDS:
        raise VenueError(10001, f"kind must be one of {sorted(TIMED_KINDS | INSTANT_KINDS)}")
    api_key = body.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise VenueError(10001, "api_key must be a string")
    seconds = body.get("seconds", 0 if kind in INSTANT_KINDS else None)
    if kind in TIMED_KINDS and (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0):
        raise VenueError(10001, "seconds must be a positive number")
    delay_ms = body.get("delay_ms", 0)
    status = body.get("status", 503)
    channel = body.get("channel", "all")
    if kind == "delay" and (not isinstance(delay_ms, int) or delay_ms <= 0):
        raise VenueError(10001, "delay_ms must be a positive integer")
    if not isinstance(status, int) or not 500 <= status <= 599:
        raise VenueError(10001, "status must be a 5xx code")
    if channel not in ("private", "public", "all"):
        raise VenueError(10001, "channel must be private, public or all")
    return Fault(kind, now_ms + int(seconds * 1000), api_key, delay_ms, status, channel)


class FaultBook:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.version = 0

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)
        self.version += 1

    def clear(self) -> None:
        self.faults.clear()
        self.version += 1

    def active(self, kind: str, api_key: str | None, now_ms: int) -> Fault | None:
        if not self.faults:
            return None
        live = [f for f in self.faults if now_ms < f.until_ms]
        if len(live) != len(self.faults):
            self.faults = live
        for f in live:
            if f.kind == kind and f.applies(api_key, now_ms):
                return f
        return None

    def describe(self, now_ms: int) -> list[dict[str, Any]]:
        return [{"kind": f.kind, "api_key": f.api_key, "remaining_ms": f.until_ms - now_ms,
                 "delay_ms": f.delay_ms, "status": f.status, "channel": f.channel}
                for f in self.faults if now_ms < f.until_ms]
