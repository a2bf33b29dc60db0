"""The chaos run's fault schedule (pure): which fault, when, on whom, drawn from a seed.

The same seed and parameters give the same schedule, printed before the run starts, so a failing run can
be repeated fault for fault (the platform's own timing still varies from run to run).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# kind -> what it does (printed with the figures)
KINDS: dict[str, str] = {
    "kill_listener": "SIGKILL the listener, restarted 1 s later as Docker would",
    "kill_trade_sync": "SIGKILL trade_sync (serve), restarted 1 s later",
    "restart_postgres": "stop PostgreSQL (fast), start it again",
    "restart_pgbouncer": "stop PgBouncer, start it again",
    "restart_redis": "stop Redis (SHUTDOWN), start it again",
    "ws_reset": "venue: TCP reset of WebSocket connections, no close frame",
    "ws_close": "venue: clean close (1000) of WebSocket connections",
    "ws_silence": "venue: 60 s of silence on WebSocket connections (no data, no pongs)",
    "duplicate": "venue: every push sent twice",
    "reorder": "venue: pushes swapped pairwise",
    "rate_limit": "venue: signed REST calls answered 10006",
    "http_5xx": "venue: every REST call answered HTTP 5xx",
    "drop_pg_answer": "proxy before PgBouncer: the listener's next fills batch commits, its answer is lost",
}
SILENCE_S = 60.0
# Faults start in this part of the stream, and each ends `quiet_tail_s` before the stream does.
WINDOW = (0.03, 0.88)
QUIET_TAIL_S = 20.0


@dataclass(frozen=True)
class PlannedFault:
    n: int
    at_s: float  # seconds after the stream started
    kind: str
    target: str | None  # a bot id (its key), or None for everyone / not applicable
    seconds: float  # duration of a timed fault, or downtime of a restart; 0 for an instant fault
    channel: str = "all"  # ws_reset / ws_close: private | public | all
    status: int = 503  # http_5xx

    def describe(self) -> str:
        parts = [f"#{self.n:<3} t+{self.at_s:7.1f}s  {self.kind:<17}"]
        if self.kind in ("ws_reset", "ws_close"):
            parts.append(f"{self.target or 'every key'} ({self.channel})")
        elif self.kind in ("ws_silence", "duplicate", "reorder", "rate_limit", "http_5xx"):
            parts.append(f"{self.target or 'every key'} for {self.seconds:.1f}s")
            if self.kind == "http_5xx":
                parts.append(f"HTTP {self.status}")
        elif self.kind.startswith("restart_"):
            parts.append(f"down {self.seconds:.1f}s")
        return " ".join(parts)


def draw_schedule(seed: int, count: int, duration_s: float, bots: list[str], kinds: list[str] | None = None,
                  quiet_tail_s: float = QUIET_TAIL_S) -> list[PlannedFault]:
    """`count` faults at uniform random instants in the window, each ending `quiet_tail_s` before the stream
    ends (so the positions are judged at the end of the stream, once the listener has had the time its
    connection timing needs to notice the last fault); kinds drawn so that every kind occurs (when count
    allows) and the rest at random."""
    rnd = random.Random(seed)
    pool = list(kinds or KINDS)
    chosen = pool[:] if count >= len(pool) else []
    chosen += [rnd.choice(pool) for _ in range(count - len(chosen))]
    rnd.shuffle(chosen)
    drawn = []
    for kind in chosen:
        seconds, channel, status = 0.0, "all", 503
        if kind == "ws_silence":
            seconds = SILENCE_S
        elif kind in ("duplicate", "reorder"):
            seconds = round(rnd.uniform(2.0, 8.0), 1)
        elif kind in ("rate_limit", "http_5xx"):
            seconds = round(rnd.uniform(2.0, 10.0), 1)
            status = rnd.choice([500, 502, 503, 504])
        elif kind.startswith("restart_"):
            seconds = round(rnd.uniform(0.5, 4.0), 1)
        elif kind in ("ws_reset", "ws_close"):
            channel = rnd.choice(["private", "public", "all"])
        lo = WINDOW[0] * duration_s
        hi = max(lo, min(WINDOW[1] * duration_s, duration_s - quiet_tail_s - seconds))
        target = None if kind.startswith(("kill_", "restart_", "drop_")) else rnd.choice([*bots, None])
        if channel == "public":
            target = None  # the public connection carries no key
        drawn.append((round(rnd.uniform(lo, hi), 1), kind, target, seconds, channel, status))
    drawn.sort(key=lambda d: d[0])
    return [PlannedFault(n, *d) for n, d in enumerate(drawn, start=1)]
