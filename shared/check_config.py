"""`python -m shared.check_config GROUP...`: validate configuration the way a service would at start.

Groups: database, redis, venue, bots, telegram, logging. Exit 0 and one line when valid, or the
same one-line error and exit code 2 a service would give.
"""
from __future__ import annotations

import argparse

from pydantic_settings import BaseSettings

from shared.settings import (BotKeysSettings, ConfigError, DatabaseSettings, LoggingSettings, RedisSettings,
                             TelegramSettings, VenueSettings, build_settings, fail_config)

GROUPS: dict[str, type[BaseSettings]] = {
    "database": DatabaseSettings, "redis": RedisSettings, "venue": VenueSettings,
    "bots": BotKeysSettings, "telegram": TelegramSettings, "logging": LoggingSettings,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.check_config")
    ap.add_argument("groups", nargs="+", choices=sorted(GROUPS))
    ap.add_argument("--db-role", action="append", default=[],
                    choices=["owner", "listener", "strategy", "reconciler", "c2"],
                    help="also require the password of this database role")
    ap.add_argument("--bot", action="append", default=[], help="also require this bot's API key pair")
    args = ap.parse_args(argv)
    try:
        loaded = {g: build_settings(GROUPS[g]) for g in args.groups}
        db = loaded.get("database") or build_settings(DatabaseSettings)
        for role in args.db_role:
            db.password(role)
        keys = loaded.get("bots") or build_settings(BotKeysSettings)
        for bot_id in args.bot:
            keys.credentials(bot_id)
        venue = loaded.get("venue")
    except (ConfigError, ValueError) as exc:
        fail_config(ConfigError(str(exc)))
    extra = f"; venue {venue.venue} at {venue.rest_url}" if venue else ""
    print(f"configuration OK: {', '.join(args.groups)}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
