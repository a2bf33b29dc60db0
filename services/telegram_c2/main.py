"""Entry point of the C2 service.

    python -m services.telegram_c2.main            # run the bot (polling) and the alerts
    python -m services.telegram_c2.main cli ...    # print a report in the terminal, no token needed
    python -m services.telegram_c2.main health     # exit 0 if the running service beat recently
"""
from __future__ import annotations

import asyncio
import signal
import sys
from datetime import datetime, timezone

from services.telegram_c2.cli import run_cli
from services.telegram_c2.config import SERVICE, C2Settings
from services.telegram_c2.service import C2Service
from shared.contracts import C2_HEARTBEAT_KEY
from shared.log import configure_logging
from shared.redis_client import redis_for
from shared.settings import DatabaseSettings, RedisSettings, TelegramSettings, load_settings

HEALTHY_AFTER_S = 90


async def run() -> int:
    configure_logging(SERVICE)
    service = C2Service(load_settings(TelegramSettings), load_settings(DatabaseSettings),
                        load_settings(RedisSettings), load_settings(C2Settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
    return 0


async def health() -> int:
    r = redis_for(load_settings(RedisSettings), 0, retries=1)
    try:
        beat = await r.get(C2_HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        print(f"unhealthy: Redis unreachable ({type(exc).__name__})")
        return 1
    finally:
        await r.aclose()
    if not beat:
        print("unhealthy: no heartbeat")
        return 1
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(beat.replace("Z", "+00:00"))).total_seconds()
    if age > HEALTHY_AFTER_S:
        print(f"unhealthy: last heartbeat {age:.0f}s ago")
        return 1
    print(f"healthy: last heartbeat {age:.0f}s ago")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cli"]:
        return asyncio.run(run_cli(argv[1:]))
    if argv[:1] == ["health"]:
        return asyncio.run(health())
    if argv and argv[0] != "run":
        print(f"unknown subcommand {argv[0]!r}; use run, cli or health", file=sys.stderr)
        return 2
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
