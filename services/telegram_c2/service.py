"""The running C2 service: the PTB application polling, the alert tasks and the heartbeat, all on
one asyncio loop. Tests start it exactly as production does, with another Bot API URL."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from telegram import Update

from services.telegram_c2.alerts import Alerts, raise_if_cancelling
from services.telegram_c2.app import MENU, build_application
from services.telegram_c2.auth import Access
from services.telegram_c2.config import C2Settings
from services.telegram_c2.deps import Deps
from services.telegram_c2.event_relay import EventRelay
from services.telegram_c2.sender import Outbox
from shared.bots import BOTS, PLATFORM_REDIS_DB
from shared.contracts import C2_HEARTBEAT_KEY
from shared.db.pool import open_pool
from shared.queries.control import BotController
from shared.queries.ops import Ops, pgbouncer_console_dsn
from shared.queries.reports import Reports
from shared.redis_client import redis_for
from shared.settings import DatabaseSettings, RedisSettings, TelegramSettings

log = structlog.get_logger()
HEARTBEAT_TTL_S = 120


async def open_backends(db: DatabaseSettings, redis: RedisSettings) -> tuple[AsyncConnectionPool, dict[int, Redis]]:
    pool = await open_pool(db, "c2", min_size=1, max_size=4)
    dbs = sorted({PLATFORM_REDIS_DB} | {s.redis_db for s in BOTS.values()})
    return pool, {i: redis_for(redis, i) for i in dbs}


class C2Service:
    def __init__(self, telegram: TelegramSettings, db: DatabaseSettings, redis: RedisSettings,
                 settings: C2Settings) -> None:
        self.telegram = telegram
        self._db = db
        self._redis_settings = redis
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: AsyncConnectionPool | None = None
        self._redis: dict[int, Redis] = {}

    async def start(self) -> None:
        self._pool, self._redis = await open_backends(self._db, self._redis_settings)
        platform = self._redis[PLATFORM_REDIS_DB]
        reports = Reports(self._pool, self._redis)
        control = BotController(self._pool, platform, self.settings.flatten_wait_s)
        access = Access(frozenset(self.telegram.c2_telegram_admin_ids),
                        frozenset(self.telegram.c2_telegram_viewer_ids))
        self.app = build_application(self.telegram.c2_telegram_bot_token.get_secret_value(),
                                     self.telegram.c2_telegram_api_url,
                                     Deps(reports, control, access, self.settings,
                                          ops=Ops(self._pool, reports, pgbouncer_console_dsn(self._db))))
        self.outbox = Outbox(self.app.bot)
        recipients = tuple(dict.fromkeys(self.telegram.c2_telegram_admin_ids + self.telegram.c2_telegram_viewer_ids))
        self.alerts = Alerts(self.settings, self.outbox, recipients, reports, self._pool, platform)
        self.events = EventRelay(self.settings, self.outbox, recipients, platform)
        await self.app.initialize()
        try:
            await self.app.bot.set_my_commands(MENU)
        except Exception as exc:  # noqa: BLE001 - a missing menu is cosmetic
            log.warning("set_commands_failed", error=type(exc).__name__)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(timeout=self.settings.poll_timeout_s, poll_interval=0.0,
                                             allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("c2:outbox", self.outbox.run()), ("c2:fill_alerts", self.alerts.follow_fills()),
            ("c2:watch", self.alerts.watch()), ("c2:bot_events", self.events.run()),
            ("c2:heartbeat", self._beat()))]
        log.info("c2_started", admins=len(access.admin_ids), viewers=len(access.viewer_ids))

    async def _beat(self) -> None:
        platform = self._redis[PLATFORM_REDIS_DB]
        while True:
            raise_if_cancelling()
            try:
                now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                await platform.set(C2_HEARTBEAT_KEY, now, ex=HEARTBEAT_TTL_S)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the service
                raise_if_cancelling()
                log.warning("heartbeat_failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=10)
            for task in stuck:
                log.error("c2_task_did_not_stop", task=task.get_name())
        if getattr(self, "app", None) is not None:
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
        if self._pool is not None:
            await self._pool.close()
        for r in self._redis.values():
            await r.aclose()
