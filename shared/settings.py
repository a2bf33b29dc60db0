"""Typed configuration from the environment (and `.env`), validated at start-up.

Every process loads the groups it needs with `load_settings`; a missing or malformed value stops
it with one line naming the variable. Secrets are `SecretStr` and never printed.
"""
from __future__ import annotations

import sys
from typing import Annotated, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.bots import BOTS, bot_spec

Role = Literal["owner", "listener", "strategy", "reconciler", "c2"]
ROLE_USERS: dict[str, str] = {
    "listener": "listener_user",
    "strategy": "strategy_user",
    "reconciler": "reconciler_user",
    "c2": "c2_user",
}
ROLE_PASSWORD_VARS: dict[str, str] = {
    "owner": "POSTGRES_PASSWORD",
    "listener": "LISTENER_DB_PASSWORD",
    "strategy": "STRATEGY_DB_PASSWORD",
    "reconciler": "RECONCILER_DB_PASSWORD",
    "c2": "C2_DB_PASSWORD",
}


DOTENV = ".env"  # read by every settings group, relative to the working directory


class ConfigError(Exception):
    """A configuration problem, phrased as one line that names the variable."""


def _base_config() -> SettingsConfigDict:
    return SettingsConfigDict(env_file=DOTENV, env_file_encoding="utf-8", extra="ignore",
                              populate_by_name=False)


def _check_url(var: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{value!r} is not a valid {'/'.join(schemes)} URL")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


class DatabaseSettings(BaseSettings):
    model_config = _base_config()

    postgres_host: str = Field("127.0.0.1", validation_alias="POSTGRES_HOST")
    postgres_port: int = Field(5432, ge=1, le=65535, validation_alias="POSTGRES_PORT")
    postgres_db: str = Field("trading_db", validation_alias="POSTGRES_DB")
    postgres_user: str = Field("trading_user", validation_alias="POSTGRES_USER")
    postgres_password: SecretStr | None = Field(None, validation_alias="POSTGRES_PASSWORD")
    pgbouncer_host: str = Field("127.0.0.1", validation_alias="PGBOUNCER_HOST")
    pgbouncer_port: int = Field(6432, ge=1, le=65535, validation_alias="PGBOUNCER_PORT")
    listener_db_password: SecretStr | None = Field(None, validation_alias="LISTENER_DB_PASSWORD")
    strategy_db_password: SecretStr | None = Field(None, validation_alias="STRATEGY_DB_PASSWORD")
    reconciler_db_password: SecretStr | None = Field(None, validation_alias="RECONCILER_DB_PASSWORD")
    c2_db_password: SecretStr | None = Field(None, validation_alias="C2_DB_PASSWORD")

    def user(self, role: Role) -> str:
        return self.postgres_user if role == "owner" else ROLE_USERS[role]

    def password(self, role: Role) -> str:
        var = ROLE_PASSWORD_VARS[role]
        secret: SecretStr | None = getattr(self, var.lower())
        if secret is None or not secret.get_secret_value():
            raise ConfigError(f"{var} is missing (needed to connect as {self.user(role)})")
        return secret.get_secret_value()

    def dsn(self, role: Role, direct: bool = False) -> str:
        """A libpq connection string; through PgBouncer unless `direct` (migrations, sessions)."""
        host, port = ((self.postgres_host, self.postgres_port) if direct
                      else (self.pgbouncer_host, self.pgbouncer_port))
        pw = self.password(role).replace("\\", "\\\\").replace("'", "\\'")
        return (f"host={host} port={port} dbname={self.postgres_db} user={self.user(role)} "
                f"password='{pw}' connect_timeout=5 application_name=alpha_{role}")


class RedisSettings(BaseSettings):
    model_config = _base_config()

    redis_host: str = Field("127.0.0.1", validation_alias="REDIS_HOST")
    redis_port: int = Field(6379, ge=1, le=65535, validation_alias="REDIS_PORT")
    redis_password: SecretStr | None = Field(None, validation_alias="REDIS_PASSWORD")

    def url(self, db: int) -> str:
        if not 0 <= db <= 15:
            raise ConfigError(f"Redis db {db} is outside 0..15")
        return f"redis://{self.redis_host}:{self.redis_port}/{db}"


Venue = Literal["sim", "demo", "testnet", "live"]
_VENUE_URLS: dict[str, tuple[str, str, str]] = {
    "live": ("https://api.bybit.com", "wss://stream.bybit.com/v5/public/linear",
             "wss://stream.bybit.com/v5/private"),
    "demo": ("https://api-demo.bybit.com", "wss://stream.bybit.com/v5/public/linear",
             "wss://stream-demo.bybit.com/v5/private"),
    "testnet": ("https://api-testnet.bybit.com", "wss://stream-testnet.bybit.com/v5/public/linear",
                "wss://stream-testnet.bybit.com/v5/private"),
}


class VenueSettings(BaseSettings):
    """Where the platform trades. The simulated venue is the default; live is never implied."""

    model_config = _base_config()

    bybit_venue: Venue | None = Field(None, validation_alias="BYBIT_VENUE")
    bybit_demo: bool = Field(False, validation_alias="BYBIT_DEMO")
    bybit_testnet: bool = Field(False, validation_alias="BYBIT_TESTNET")
    bybit_sim_host: str = Field("127.0.0.1", validation_alias="BYBIT_SIM_HOST")
    bybit_sim_port: int = Field(18080, ge=1, le=65535, validation_alias="BYBIT_SIM_PORT")
    bybit_rest_url: str | None = Field(None, validation_alias="BYBIT_REST_URL")
    bybit_ws_public_url: str | None = Field(None, validation_alias="BYBIT_WS_PUBLIC_URL")
    bybit_ws_private_url: str | None = Field(None, validation_alias="BYBIT_WS_PRIVATE_URL")
    bybit_recv_window_ms: int = Field(5000, ge=100, le=60000, validation_alias="BYBIT_RECV_WINDOW_MS")

    @field_validator("bybit_rest_url")
    @classmethod
    def _rest_url(cls, v: str | None) -> str | None:
        return _check_url("BYBIT_REST_URL", v, ("http", "https"))

    @field_validator("bybit_ws_public_url", "bybit_ws_private_url")
    @classmethod
    def _ws_url(cls, v: str | None) -> str | None:
        return _check_url("BYBIT_WS_*_URL", v, ("ws", "wss"))

    @model_validator(mode="after")
    def _one_venue(self) -> VenueSettings:
        if self.bybit_demo and self.bybit_testnet:
            raise ValueError("BYBIT_DEMO and BYBIT_TESTNET are both true; choose one")
        implied = "demo" if self.bybit_demo else "testnet" if self.bybit_testnet else None
        if self.bybit_venue is not None and implied is not None and implied != self.bybit_venue:
            raise ValueError(f"BYBIT_VENUE={self.bybit_venue} contradicts BYBIT_{implied.upper()}=true")
        return self

    @property
    def venue(self) -> Venue:
        if self.bybit_venue is not None:
            return self.bybit_venue
        return "demo" if self.bybit_demo else "testnet" if self.bybit_testnet else "sim"

    def _defaults(self) -> tuple[str, str, str]:
        if self.venue == "sim":
            base = f"{self.bybit_sim_host}:{self.bybit_sim_port}"
            return (f"http://{base}", f"ws://{base}/v5/public/linear", f"ws://{base}/v5/private")
        return _VENUE_URLS[self.venue]

    @property
    def rest_url(self) -> str:
        return self.bybit_rest_url or self._defaults()[0]

    @property
    def ws_public_url(self) -> str:
        return self.bybit_ws_public_url or self._defaults()[1]

    @property
    def ws_private_url(self) -> str:
        return self.bybit_ws_private_url or self._defaults()[2]


class BotKeysSettings(BaseSettings):
    """Each bot's own API key pair (its own sub-account)."""

    model_config = _base_config()

    shortseller_bybit_api_key: str | None = Field(None, validation_alias="SHORTSELLER_BYBIT_API_KEY")
    shortseller_bybit_api_secret: SecretStr | None = Field(None, validation_alias="SHORTSELLER_BYBIT_API_SECRET")
    lxalgo_bybit_api_key: str | None = Field(None, validation_alias="LXALGO_BYBIT_API_KEY")
    lxalgo_bybit_api_secret: SecretStr | None = Field(None, validation_alias="LXALGO_BYBIT_API_SECRET")
    momentum_bybit_api_key: str | None = Field(None, validation_alias="MOMENTUM_BYBIT_API_KEY")
    momentum_bybit_api_secret: SecretStr | None = Field(None, validation_alias="MOMENTUM_BYBIT_API_SECRET")

    def credentials(self, bot_id: str) -> tuple[str, SecretStr]:
        prefix = bot_spec(bot_id).env_prefix
        key: str | None = getattr(self, f"{prefix.lower()}_bybit_api_key")
        secret: SecretStr | None = getattr(self, f"{prefix.lower()}_bybit_api_secret")
        if not key:
            raise ConfigError(f"{prefix}_BYBIT_API_KEY is missing (needed by bot {bot_id})")
        if secret is None or not secret.get_secret_value():
            raise ConfigError(f"{prefix}_BYBIT_API_SECRET is missing (needed by bot {bot_id})")
        return key, secret

    def configured_bots(self) -> list[str]:
        """Bots with a complete key pair, in registry order."""
        out = []
        for bot_id, spec in BOTS.items():
            key = getattr(self, f"{spec.env_prefix.lower()}_bybit_api_key")
            secret = getattr(self, f"{spec.env_prefix.lower()}_bybit_api_secret")
            if key and secret is not None and secret.get_secret_value():
                out.append(bot_id)
        return out


def _parse_ids(value: object) -> tuple[int, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = [p.strip() for p in str(value).split(",") if p.strip()]
    ids = []
    for item in items:
        if not item.lstrip("-").isdigit():
            raise ValueError(f"{item!r} is not a numeric Telegram user id")
        ids.append(int(item))
    return tuple(ids)


class TelegramSettings(BaseSettings):
    model_config = _base_config()

    c2_telegram_bot_token: SecretStr = Field(validation_alias="C2_TELEGRAM_BOT_TOKEN")
    c2_telegram_admin_ids: Annotated[tuple[int, ...], NoDecode] = Field(validation_alias="C2_TELEGRAM_ADMIN_IDS")
    c2_telegram_viewer_ids: Annotated[tuple[int, ...], NoDecode] = Field((), validation_alias="C2_TELEGRAM_VIEWER_IDS")
    c2_telegram_api_url: str = Field("https://api.telegram.org/bot", validation_alias="C2_TELEGRAM_API_URL")

    @field_validator("c2_telegram_admin_ids", "c2_telegram_viewer_ids", mode="before")
    @classmethod
    def _ids(cls, v: object) -> tuple[int, ...]:
        return _parse_ids(v)

    @field_validator("c2_telegram_admin_ids")
    @classmethod
    def _at_least_one_admin(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("at least one admin id is required")
        return v

    @field_validator("c2_telegram_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        return _check_url("C2_TELEGRAM_API_URL", v, ("http", "https")) or v


class LoggingSettings(BaseSettings):
    model_config = _base_config()

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field("json", validation_alias="LOG_FORMAT")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _normalise(cls, v: object) -> object:
        return v.strip() if isinstance(v, str) else v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


S = TypeVar("S", bound=BaseSettings)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each offending variable; input values of secret fields are never shown."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        var = str(err["loc"][0]).upper() if err["loc"] else "configuration"
        if err["type"] == "missing":
            parts.append(f"{var} is missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{var}: {msg}" if err["loc"] else msg)
    return "; ".join(parts)


def build_settings(cls: type[S]) -> S:
    """Instantiate a settings group or raise ConfigError with one line."""
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def load_settings(cls: type[S]) -> S:
    """For process start-up: the settings group, or one line on stderr and exit code 2."""
    try:
        return build_settings(cls)
    except ConfigError as exc:
        fail_config(exc)


def fail_config(exc: ConfigError) -> NoReturn:
    print(f"config error: {exc}", file=sys.stderr)
    raise SystemExit(2)
