"""The listener's own settings (timeouts, batching, symbols); shared groups come from shared.settings."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICE = "websocket_listener"
KLINE_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")


def _csv(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


class ListenerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    symbols: Annotated[tuple[str, ...], NoDecode] = Field(("BTCUSDT", "ETHUSDT", "SOLUSDT"),
                                                          validation_alias="LISTENER_SYMBOLS")
    bots: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="LISTENER_BOTS")
    # Candle intervals of the public kline streams (Bybit's names: 1 3 5 15 30 60 120 240 360 720 D W M).
    kline_intervals: Annotated[tuple[str, ...], NoDecode] = Field(
        ("5",), validation_alias="LISTENER_KLINE_INTERVALS")
    ping_interval_s: float = Field(20.0, gt=0, validation_alias="LISTENER_PING_INTERVAL_S")
    dead_after_s: float = Field(30.0, gt=0, validation_alias="LISTENER_DEAD_AFTER_S")
    handshake_timeout_s: float = Field(10.0, gt=0, validation_alias="LISTENER_HANDSHAKE_TIMEOUT_S")
    backoff_min_s: float = Field(0.5, gt=0, validation_alias="LISTENER_BACKOFF_MIN_S")
    backoff_max_s: float = Field(30.0, gt=0, validation_alias="LISTENER_BACKOFF_MAX_S")
    auth_backoff_min_s: float = Field(5.0, gt=0, validation_alias="LISTENER_AUTH_BACKOFF_MIN_S")
    catchup_overlap_s: float = Field(60.0, ge=0, validation_alias="LISTENER_CATCHUP_OVERLAP_S")
    catchup_lookback_days: int = Field(7, ge=1, le=730, validation_alias="LISTENER_CATCHUP_LOOKBACK_DAYS")
    catchup_every_s: float = Field(300.0, gt=0, validation_alias="LISTENER_CATCHUP_EVERY_S")
    fill_feed_maxlen: int = Field(20_000, ge=100, validation_alias="LISTENER_FILL_FEED_MAXLEN")
    max_batch: int = Field(1000, ge=1, le=10000, validation_alias="LISTENER_MAX_BATCH")
    queue_size: int = Field(10_000, ge=100, validation_alias="LISTENER_QUEUE_SIZE")
    # batches committed (or committing) and not yet announced: the memory bound while Redis is away
    max_unannounced_batches: int = Field(4, ge=1, le=1000, validation_alias="LISTENER_MAX_UNANNOUNCED_BATCHES")
    wallet_snapshot_every_s: float = Field(60.0, gt=0, validation_alias="LISTENER_WALLET_SNAPSHOT_EVERY_S")
    heartbeat_every_s: float = Field(5.0, gt=0, validation_alias="LISTENER_HEARTBEAT_EVERY_S")
    health_max_age_s: float = Field(60.0, gt=0, validation_alias="LISTENER_HEALTH_MAX_AGE_S")
    consumer_name: str = Field("listener-1", validation_alias="LISTENER_CONSUMER_NAME")
    pnl_refresh_every_s: float = Field(10.0, gt=0, le=3600, validation_alias="LISTENER_PNL_REFRESH_EVERY_S")
    shutdown_timeout_s: float = Field(20.0, gt=0, validation_alias="LISTENER_SHUTDOWN_TIMEOUT_S")

    @field_validator("symbols", "bots", mode="before")
    @classmethod
    def _split(cls, v: object) -> tuple[str, ...]:
        return _csv(v)

    @field_validator("kline_intervals", mode="before")
    @classmethod
    def _intervals(cls, v: object) -> tuple[str, ...]:
        intervals = _csv(v)
        unknown = [i for i in intervals if i not in KLINE_INTERVALS]
        if unknown or not intervals:
            raise ValueError(f"kline intervals must be some of {','.join(KLINE_INTERVALS)}, got {v!r}")
        return tuple(dict.fromkeys(intervals))
