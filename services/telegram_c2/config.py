"""Settings of the C2 service besides the Telegram credentials (pydantic-settings, env vars)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.telegram_c2.events import parse_kinds

SERVICE = "telegram_c2"
AlertMode = Literal["on", "silent", "off"]


class C2Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    alert_fills_trade: AlertMode = Field("on", validation_alias="C2_ALERT_FILLS_TRADE")
    alert_fills_funding: AlertMode = Field("silent", validation_alias="C2_ALERT_FILLS_FUNDING")
    alert_fills_other: AlertMode = Field("on", validation_alias="C2_ALERT_FILLS_OTHER")  # ADL, liquidation...
    alert_coalesce_s: float = Field(3.0, ge=0, le=60, validation_alias="C2_ALERT_COALESCE_S")
    alert_check_interval_s: float = Field(15.0, gt=0, le=600, validation_alias="C2_ALERT_CHECK_INTERVAL_S")
    listener_down_after_s: float = Field(60.0, gt=0, validation_alias="C2_LISTENER_DOWN_AFTER_S")
    bot_stale_after_s: float = Field(120.0, gt=0, validation_alias="C2_BOT_STALE_AFTER_S")
    poll_timeout_s: int = Field(20, ge=0, le=50, validation_alias="C2_POLL_TIMEOUT_S")
    heartbeat_interval_s: float = Field(30.0, gt=0, validation_alias="C2_HEARTBEAT_INTERVAL_S")
    confirm_ttl_s: float = Field(60.0, gt=0, validation_alias="C2_CONFIRM_TTL_S")
    flatten_wait_s: float = Field(20.0, gt=0, le=120, validation_alias="C2_FLATTEN_WAIT_S")
    # The bots' events (events:{bot_id}): kinds to relay (empty: every kind) and kinds never relayed
    alert_kinds: str = Field("", validation_alias="C2_ALERT_KINDS")
    alert_kinds_off: str = Field("", validation_alias="C2_ALERT_KINDS_OFF")
    event_batch_s: float = Field(5.0, ge=0, le=60, validation_alias="C2_EVENT_BATCH_S")
    event_max_age_s: float = Field(86_400.0, gt=0, validation_alias="C2_EVENT_MAX_AGE_S")

    @field_validator("alert_kinds", "alert_kinds_off")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        parse_kinds(value)
        return value

    @property
    def kinds_on(self) -> frozenset[str]:
        return parse_kinds(self.alert_kinds)

    @property
    def kinds_off(self) -> frozenset[str]:
        return parse_kinds(self.alert_kinds_off)
