"""The real C2 service (PTB application, alerts, heartbeat) against the fake Bot API server and the
private PostgreSQL/PgBouncer/Redis stack."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.telegram_c2.config import C2Settings
from services.telegram_c2.service import C2Service
from shared.settings import TelegramSettings
from tests.integration.telegram.harness import ADMIN, TOKEN, VIEWER, C2Harness, register_bots
from tests.support.stack import TestStack
from tests.support.telegram_api import FakeTelegramApi


@pytest.fixture
async def c2(clean_state: TestStack) -> AsyncIterator[C2Harness]:
    register_bots(clean_state)
    api = FakeTelegramApi(TOKEN)
    await api.start()
    telegram = TelegramSettings(C2_TELEGRAM_BOT_TOKEN=TOKEN, C2_TELEGRAM_ADMIN_IDS=str(ADMIN),
                                C2_TELEGRAM_VIEWER_IDS=str(VIEWER), C2_TELEGRAM_API_URL=api.base_url)
    settings = C2Settings(C2_ALERT_COALESCE_S=0.5, C2_ALERT_CHECK_INTERVAL_S=0.3, C2_POLL_TIMEOUT_S=1,
                          C2_HEARTBEAT_INTERVAL_S=1, C2_ALERT_FILLS_FUNDING="silent",
                          C2_FLATTEN_WAIT_S=1, C2_EVENT_BATCH_S=1)
    service = C2Service(telegram, clean_state.db, clean_state.redis, settings)
    await service.start()
    try:
        yield C2Harness(api, service, clean_state)
    finally:
        await service.stop()
        await api.stop()
