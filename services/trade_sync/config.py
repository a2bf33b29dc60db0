"""trade_sync's own settings (environment / `.env`), validated at start-up."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TradeSyncSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    interval_s: int = Field(600, ge=10, le=86_400, validation_alias="TRADE_SYNC_INTERVAL_S")
    sync_hours: int = Field(24, ge=1, le=24 * 30, validation_alias="TRADE_SYNC_WINDOW_HOURS")
    windows_in_flight: int = Field(4, ge=1, le=16, validation_alias="TRADE_SYNC_WINDOWS_IN_FLIGHT")
    batch_rows: int = Field(900, ge=1, le=5000, validation_alias="TRADE_SYNC_BATCH_ROWS")
    ingest_timeout_s: float = Field(120.0, gt=0, le=3600, validation_alias="TRADE_SYNC_INGEST_TIMEOUT_S")
    max_attempts: int = Field(8, ge=1, le=50, validation_alias="TRADE_SYNC_MAX_ATTEMPTS")
    lock_ttl_s: int = Field(60, ge=5, le=3600, validation_alias="TRADE_SYNC_LOCK_TTL_S")
    ip_limit_per_5s: int = Field(600, ge=0, le=100_000, validation_alias="TRADE_SYNC_IP_LIMIT_PER_5S")
    repair_positions: bool = Field(True, validation_alias="TRADE_SYNC_REPAIR_POSITIONS")
    drift_confirm_s: float = Field(1.0, ge=0, le=60, validation_alias="TRADE_SYNC_DRIFT_CONFIRM_S")
    flatten_deadline_s: float = Field(15.0, gt=0, le=600, validation_alias="TRADE_SYNC_FLATTEN_DEADLINE_S")
    flatten_max_age_s: float = Field(300.0, gt=0, le=86_400, validation_alias="TRADE_SYNC_FLATTEN_MAX_AGE_S")
