"""The live bot process's own settings (`STRATEGY_*`); venue, keys, database and Redis come from
shared/settings.py (`BYBIT_VENUE` etc.: live trading is never a default)."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    # A position the bot's state does not know of: adopt it (its opened time = the exchange's
    # createdTime) or refuse to trade until an operator closes it or turns this on.
    adopt_unknown_positions: bool = Field(True, validation_alias="STRATEGY_ADOPT_UNKNOWN_POSITIONS")
    warmup_factor: int = Field(1, ge=1, le=10, validation_alias="STRATEGY_WARMUP_FACTOR")
    read_block_ms: int = Field(100, ge=10, le=1000, validation_alias="STRATEGY_READ_BLOCK_MS")
    # after a candle arrives, how long to wait for the same close on the bot's other streams
    bar_settle_ms: int = Field(50, ge=0, le=1000, validation_alias="STRATEGY_BAR_SETTLE_MS")
    heartbeat_interval_s: float = Field(30.0, gt=0, validation_alias="STRATEGY_HEARTBEAT_INTERVAL_S")
    rest_timeout_s: float = Field(10.0, gt=0, validation_alias="STRATEGY_REST_TIMEOUT_S")
    # how often the process refreshes `liveness:bot:{bot_id}` (read by `python -m strategies.health`)
    liveness_interval_s: float = Field(2.0, gt=0, le=60, validation_alias="STRATEGY_LIVENESS_INTERVAL_S")
