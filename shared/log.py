"""structlog set-up: JSON lines in production, console locally, secrets redacted everywhere."""
from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog
from dotenv import dotenv_values

from shared.settings import DOTENV, LoggingSettings, build_settings

REDACTED = "***"
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|signature|(^|[-_])sign($|[-_])|api_key|apikey|"
                         r"authorization|dsn)", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY)$")
_PATTERNS = [
    (re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"), REDACTED),  # Telegram bot tokens
    (re.compile(r"(X-BAPI-SIGN['\"]?\s*[:=]\s*['\"]?)[0-9a-fA-F]{16,}", re.IGNORECASE), r"\1" + REDACTED),
]


class SecretRedactor:
    """Removes secrets from every log event: by key name, by known value, and by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would redact ordinary words; real secrets are long.
        self._values.update(s for s in secrets if s and len(s) >= 6)

    def scrub_text(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def scrub(self, value: Any, key: str | None = None) -> Any:
        if key is not None and _SECRET_KEY.search(key) and value not in (None, ""):
            return REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, MutableMapping):
            return {k: self.scrub(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.scrub_text(str(value))

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {k: self.scrub(v, k if k != "event" else None) for k, v in event_dict.items()}


def secrets_from_environment(environ: Mapping[str, str | None] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_ENV.search(k) and v]


def secrets_from_dotenv(path: str | Path = DOTENV) -> list[str]:
    """The settings read `.env` themselves (pydantic-settings), so its secrets may never pass
    through the environment; they are redacted all the same."""
    return secrets_from_environment(dotenv_values(path)) if Path(path).is_file() else []


_redactor = SecretRedactor()


def register_secret(*values: str) -> None:
    """Values to redact that were not in the environment (e.g. generated at run time)."""
    _redactor.add(values)


def configure_logging(service: str, bot_id: str | None = None, fmt: str | None = None,
                      level: str | None = None, stream: Any = None) -> None:
    settings = build_settings(LoggingSettings)
    fmt = fmt or settings.log_format
    level = level or settings.log_level
    _redactor.add(secrets_from_environment())
    _redactor.add(secrets_from_dotenv())
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redactor,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, bot_id=bot_id)
