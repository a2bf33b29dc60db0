"""/killswitch end to end: the real C2 service (holding no trading key, as in production), the local
Bot API server, `trade_sync serve` as a process holding the keys, and the simulated venue with open
positions and resting orders on all three bots. Afterwards no position, no order, every bot paused,
and the audit rows written (C2's and trade_sync's); a viewer's and a stranger's taps changed nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess
from services.telegram_c2.config import C2Settings
from services.telegram_c2.service import C2Service
from shared.bots import BOTS
from shared.bybit.rest_client import BybitRestClient
from shared.settings import TelegramSettings
from tests.integration.telegram.harness import ADMIN, STRANGER, TOKEN, VIEWER, C2Harness, register_bots
from tests.integration.telegram.test_flatten_on_venue import open_orders, open_position, positions
from tests.support import trade_sync_harness as h
from tests.support.stack import TestStack
from tests.support.telegram_api import FakeTelegramApi

pytestmark = pytest.mark.integration
KEYS = {bot_id: (key, secret) for bot_id, _p, key, secret in h.ACCOUNTS}


async def test_killswitch_closes_everything_on_all_three_bots(clean_state: TestStack, tmp_path: Path) -> None:
    register_bots(clean_state)
    with VenueProcess(list(KEYS.values()), speed=1.0, seed=5) as venue:
        async with VenueAdmin(venue.admin_url) as admin:
            await admin.pin_price("BTCUSDT", "60000")
            await admin.pin_price("ETHUSDT", "3000")
        clients = {b: BybitRestClient(venue.rest_url, k, s) for b, (k, s) in KEYS.items()}
        for i, (bot_id, client) in enumerate(clients.items()):
            await open_position(client, "BTCUSDT", "Buy" if i % 2 == 0 else "Sell", "0.010")
            await open_position(client, "ETHUSDT", "Sell", f"0.{i + 1}0")
            await client.post("/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                                   "orderType": "Limit", "qty": "0.001", "price": "50000"})
            assert len(await positions(client)) == 2 and len(await open_orders(client)) == 1

        api = FakeTelegramApi(TOKEN)
        await api.start()
        telegram = TelegramSettings(C2_TELEGRAM_BOT_TOKEN=TOKEN, C2_TELEGRAM_ADMIN_IDS=str(ADMIN),
                                    C2_TELEGRAM_VIEWER_IDS=str(VIEWER), C2_TELEGRAM_API_URL=api.base_url)
        settings = C2Settings(C2_POLL_TIMEOUT_S=1, C2_ALERT_CHECK_INTERVAL_S=5, C2_HEARTBEAT_INTERVAL_S=1,
                              C2_FLATTEN_WAIT_S=25)
        serve = h.start_serve(h.base_env(clean_state.env, venue), tmp_path / "serve.log",
                              clean_state.redis.redis_port, clean_state.redis.redis_password.get_secret_value())
        service = C2Service(telegram, clean_state.db, clean_state.redis, settings)
        await service.start()
        c2 = C2Harness(api, service, clean_state)
        try:
            assert (await c2.ask(VIEWER, "/killswitch")).text == "Not allowed: control commands are for admins only."
            ask = await c2.ask(ADMIN, "/killswitch")
            assert ask.text.startswith("KILL SWITCH: pause every bot")
            yes, no = (b["callback_data"] for b in ask.params["reply_markup"]["inline_keyboard"][0])
            for user in (VIEWER, STRANGER):
                mark = len(api.calls)
                api.press_button(user, ask, yes)
                if user == VIEWER:
                    refused = await api.wait_for("answerCallbackQuery", after=mark)
                    assert refused.params["text"] == "Admins only."
            await c2.ask(ADMIN, "/help")
            assert {r[0] for r in c2.owner_sql("SELECT status FROM trading.bots")} == {"active"}
            for client in clients.values():
                assert len(await positions(client)) == 2

            mark = len(api.calls)
            api.press_button(ADMIN, ask, yes)
            done = await api.wait_for("editMessageText", after=mark, timeout_s=30)
            await c2.ask(ADMIN, "/help")  # updates are handled in order: the tap's audit row is written
            left = {b: (await positions(c), await open_orders(c)) for b, c in clients.items()}
            history = {b: (await c.get("/v5/order/history", {"category": "linear", "limit": 50})).result["list"]
                       for b, c in clients.items()}
        finally:
            await service.stop()
            await api.stop()
            serve.stop()
            for client in clients.values():
                await client.close()
    lines = done.text.splitlines()
    assert lines[0] == "Kill switch done: every bot paused, nothing left open."
    assert lines[1:] == [f"{b}: paused, 1 order(s) cancelled, 2 position(s) closed" for b in BOTS]
    assert left == {b: ({}, []) for b in BOTS}
    assert {r[0] for r in c2.owner_sql("SELECT status FROM trading.bots")} == {"paused"}
    rows = c2.owner_sql("SELECT user_id, command, result FROM trading.audit_log WHERE role <> 'service' ORDER BY id")
    assert rows == [(VIEWER, "killswitch", "denied"), (ADMIN, "killswitch", "confirm_requested"),
                    (VIEWER, "killswitch", "denied"), (STRANGER, "killswitch", "denied"),
                    (ADMIN, "killswitch", "ok")]
    executed = c2.owner_sql("SELECT args, result FROM trading.audit_log WHERE role = 'service' ORDER BY args")
    assert executed == sorted((b, "ok") for b in BOTS)
    for bot_id, orders in history.items():  # each position closed by an order under the bot's own key
        links = [o["orderLinkId"] for o in orders if o["orderLinkId"].startswith(f"{bot_id}-flatten-")]
        assert len(links) == 2, (bot_id, links)


async def test_flatten_through_telegram_is_executed_by_trade_sync(clean_state: TestStack, tmp_path: Path) -> None:
    """/flatten from an admin: C2 (no key) pauses the bot, trade_sync closes, the reply says what is left."""
    register_bots(clean_state)
    with VenueProcess(list(KEYS.values()), speed=1.0, seed=6) as venue:
        async with VenueAdmin(venue.admin_url) as admin:
            await admin.pin_price("BTCUSDT", "60000")
        client = BybitRestClient(venue.rest_url, *KEYS["momentum_001"])
        await open_position(client, "BTCUSDT", "Sell", "0.030")
        api = FakeTelegramApi(TOKEN)
        await api.start()
        telegram = TelegramSettings(C2_TELEGRAM_BOT_TOKEN=TOKEN, C2_TELEGRAM_ADMIN_IDS=str(ADMIN),
                                    C2_TELEGRAM_VIEWER_IDS=str(VIEWER), C2_TELEGRAM_API_URL=api.base_url)
        settings = C2Settings(C2_POLL_TIMEOUT_S=1, C2_ALERT_CHECK_INTERVAL_S=5, C2_HEARTBEAT_INTERVAL_S=1,
                              C2_FLATTEN_WAIT_S=25)
        serve = h.start_serve(h.base_env(clean_state.env, venue), tmp_path / "serve.log",
                              clean_state.redis.redis_port, clean_state.redis.redis_password.get_secret_value())
        service = C2Service(telegram, clean_state.db, clean_state.redis, settings)
        await service.start()
        c2 = C2Harness(api, service, clean_state)
        try:
            ask = await c2.ask(ADMIN, "/flatten charlie")
            mark = len(api.calls)
            api.press_button(ADMIN, ask, ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
            done = await api.wait_for("editMessageText", after=mark, timeout_s=30)
            await c2.ask(ADMIN, "/help")  # the tap's audit row is written
            left = (await positions(client), await open_orders(client))
        finally:
            await service.stop()
            await api.stop()
            serve.stop()
            await client.close()
    assert done.text == ("Flatten of momentum_001: paused. Closed BTCUSDT short 0.030; 0 open order(s) cancelled; "
                         "nothing left open.")
    assert left == ({}, [])
    assert c2.owner_sql("SELECT role, command, args, result FROM trading.audit_log ORDER BY id") == [
        ("admin", "flatten", "charlie", "confirm_requested"),
        ("service", "flatten_execute", "momentum_001", "ok"),
        ("admin", "flatten", "momentum_001", "ok")]
