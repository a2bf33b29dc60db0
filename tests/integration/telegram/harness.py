"""What the C2 tests share: the users, and a handle on the running service and the fake Bot API."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg
from services.telegram_c2.service import C2Service
from shared.bots import BOTS
from tests.support.stack import TestStack
from tests.support.telegram_api import FakeTelegramApi

TOKEN = "123456:TEST-token-for-the-fake-bot-api-server"
ADMIN = 1001
VIEWER = 2002
STRANGER = 3003


ALERT_PREFIXES = ("New fill", "ALERT:", "Recovered:", "Bot event")


def is_alert(text: str) -> bool:
    return text.startswith(ALERT_PREFIXES) or text.split(" ", 1)[-1].startswith("new fills:")


@dataclass
class C2Harness:
    api: FakeTelegramApi
    service: C2Service
    stack: TestStack

    async def ask(self, user_id: int, text: str, method: str = "sendMessage"):  # type: ignore[no-untyped-def]
        """Send a command as `user_id` and wait for the bot's first answer of `method` to that chat."""
        mark = len(self.api.calls)
        self.api.send_command(user_id, text)
        return await self.api.wait_for(
            method, lambda c: int(c.params.get("chat_id", 0)) == user_id and not is_alert(c.text), after=mark)

    def owner_sql(self, sql: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        with psycopg.connect(self.stack.db.dsn("owner", direct=True), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


def register_bots(stack: TestStack) -> None:
    with psycopg.connect(stack.db.dsn("owner", direct=True), autocommit=True) as conn:
        for spec in BOTS.values():
            conn.execute("""INSERT INTO trading.bots (bot_id, bot_name, strategy_name, redis_db, last_heartbeat)
                            VALUES (%s, %s, %s, %s, now()) ON CONFLICT (bot_id) DO NOTHING""",
                         (spec.bot_id, spec.strategy_name, spec.strategy_name, spec.redis_db))




async def next_message(pubsub, timeout_s: float = 5.0) -> dict | None:  # type: ignore[no-untyped-def]
    """The next published message (subscribe confirmations skipped), or None after `timeout_s`."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout_s
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if msg is not None:
            return msg
    return None
