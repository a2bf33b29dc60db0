"""In-process counters, mirrored to the Redis hash LISTENER_COUNTERS_KEY by the heartbeat task."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    frames_received: int = 0
    executions_received: int = 0
    fills_written: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    reconnects: int = 0
    auth_failures: int = 0
    orders_written: int = 0
    positions_written: int = 0
    positions_stale: int = 0
    position_mismatches: int = 0
    wallet_snapshots: int = 0
    market_updates: int = 0
    candles_written: int = 0
    candles_repeated: int = 0
    candles_refused: int = 0
    candles_dropped: int = 0
    catchups: int = 0
    catchup_rows: int = 0
    catchup_rate_limited: int = 0
    stream_entries: int = 0
    batches: int = 0
    db_retries: int = 0
    db_wait_ms: int = 0
    redis_wait_ms: int = 0
    pnl_applied: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
