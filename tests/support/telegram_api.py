"""A local HTTP server that speaks the Telegram Bot API, for running the real PTB application.

Point PTB at it with `base_url=server.base_url` (the bot's token is appended, as with the real
API). Tests feed updates (`send_command`, `press_button`), the bot long-polls `getUpdates`, and
every outgoing call (`sendMessage`, `sendPhoto`, ...) is recorded for the test to assert on.
Failures can be injected (`fail_next`) to exercise the sender's retries.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

BOT_USER = {"id": 7000001, "is_bot": True, "first_name": "AlphaC2", "username": "alpha_c2_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
_JSON_FIELDS = {"reply_markup", "entities", "caption_entities", "link_preview_options", "reply_parameters",
                "allowed_updates", "commands", "scope"}
BOT_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time"}


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")


@dataclass
class _Failure:
    method: str
    remaining: int
    error_code: int
    description: str
    retry_after_s: int | None


class FakeTelegramApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[ApiCall] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 100
        self._update_event = asyncio.Event()
        self._call_event = asyncio.Event()
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what the test does -------------------------------------------------------------

    def send_command(self, user_id: int, text: str, *, chat_id: int | None = None, caption: bool = False,
                     edited: bool = False) -> int:
        """A private message from `user_id`; a leading command is marked as a `bot_command` entity the
        way Telegram marks it (`/` then letters, digits and `_`, optionally `@username`). With `caption`
        the text is a photo's caption; with `edited` the update is an edit of an earlier message."""
        message: dict[str, Any] = {
            "message_id": self._new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id or user_id, "type": "private", "first_name": f"user{user_id}"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
        }
        entities = []
        if (m := BOT_COMMAND.match(text)) is not None:
            entities = [{"type": "bot_command", "offset": 0, "length": m.end()}]
        if caption:
            message["photo"] = [{"file_id": "in-photo", "file_unique_id": "u", "width": 1, "height": 1}]
            message["caption"] = text
            if entities:
                message["caption_entities"] = entities
        else:
            message["text"] = text
            if entities:
                message["entities"] = entities
        if edited:
            message["edit_date"] = int(time.time())
            return self._push({"edited_message": message})
        return self._push({"message": message})

    def press_button(self, user_id: int, message: ApiCall, data: str) -> int:
        """A tap on an inline button of a message the bot sent earlier."""
        chat_id = int(message.params["chat_id"])
        sent = {
            "message_id": message.params.get("_message_id", 0),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "text": message.text,
        }
        query = {"id": f"cq{self._next_update_id}", "chat_instance": "ci",
                 "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                 "message": sent, "data": data}
        return self._push({"callback_query": query})

    def fail_next(self, method: str, times: int = 1, *, error_code: int = 429,
                  description: str = "Too Many Requests: retry after 1", retry_after_s: int | None = 1) -> None:
        self._failures.append(_Failure(method, times, error_code, description, retry_after_s))

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method
                and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)]

    async def wait_for(self, method: str, predicate: Callable[[ApiCall], bool] = lambda c: True,
                       *, after: int = 0, timeout_s: float = 15.0) -> ApiCall:
        """The first call to `method` (at index >= `after`) that satisfies `predicate`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for call in self.calls[after:]:
                if call.method == method and predicate(call):
                    return call
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(c.method, c.text[:60]) for c in self.calls[after:]]
                raise AssertionError(f"no {method} call matched within {timeout_s}s; calls: {seen}")
            self._call_event.clear()
            try:
                await asyncio.wait_for(self._call_event.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_until_consumed(self, update_id: int, timeout_s: float = 15.0) -> None:
        """Until the bot has fetched `update_id` and asked for the next ones (offset past it)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(u["update_id"] <= update_id for u in self._updates):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"update {update_id} was not consumed within {timeout_s}s")
            await asyncio.sleep(0.02)

    # --- the Bot API ------------------------------------------------------------------------

    def _new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id

    def _push(self, update: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **update})
        self._update_event.set()
        return update_id

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._read_params(request)
        call = ApiCall(method, params, files)
        failure = self._take_failure(method)
        if failure is not None:
            self._record(call)
            body: dict[str, Any] = {"ok": False, "error_code": failure.error_code, "description": failure.description}
            if failure.retry_after_s is not None:
                body["parameters"] = {"retry_after": failure.retry_after_s}
            return web.json_response(body, status=failure.error_code)
        handler = getattr(self, f"_api_{method}", None)
        result = await handler(call) if handler is not None else True
        if method != "getUpdates":
            self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self._call_event.set()

    def _take_failure(self, method: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.remaining > 0:
                failure.remaining -= 1
                return failure
        return None

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            return dict(await request.json()), files
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            elif key in _JSON_FIELDS:
                params[key] = json.loads(str(value))
            elif key in _INT_FIELDS and str(value).lstrip("-").isdigit():
                params[key] = int(str(value))
            else:
                params[key] = str(value)
        return params, files

    def _message(self, call: ApiCall, **extra: Any) -> dict[str, Any]:
        message_id = self._new_message_id()
        call.params["_message_id"] = message_id
        out: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                               "chat": {"id": int(call.params.get("chat_id", 0)), "type": "private"}}
        out.update(extra)
        return out

    async def _api_getMe(self, call: ApiCall) -> dict[str, Any]:
        return BOT_USER

    async def _api_getUpdates(self, call: ApiCall) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset", 0) or 0)
        timeout_s = float(call.params.get("timeout", 0) or 0)
        # Confirmed updates are forgotten, as Telegram does.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout_s
        while not self._updates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._update_event.clear()
            try:
                await asyncio.wait_for(self._update_event.wait(), remaining)
            except TimeoutError:
                return []
        return list(self._updates)

    async def _api_sendMessage(self, call: ApiCall) -> dict[str, Any]:
        extra: dict[str, Any] = {"text": call.params.get("text", "")}
        if "reply_markup" in call.params:
            extra["reply_markup"] = call.params["reply_markup"]
        return self._message(call, **extra)

    async def _api_sendPhoto(self, call: ApiCall) -> dict[str, Any]:
        photo = [{"file_id": f"photo{self._next_message_id}", "file_unique_id": "u", "width": 1, "height": 1}]
        return self._message(call, photo=photo, caption=call.params.get("caption", ""))

    async def _api_editMessageText(self, call: ApiCall) -> dict[str, Any]:
        message_id = int(call.params.get("message_id", 0))
        return {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                "chat": {"id": int(call.params.get("chat_id", 0)), "type": "private"},
                "text": call.params.get("text", ""), "edit_date": int(time.time())}

    async def _api_answerCallbackQuery(self, call: ApiCall) -> bool:
        return True

    async def _api_deleteWebhook(self, call: ApiCall) -> bool:
        return True

    async def _api_setMyCommands(self, call: ApiCall) -> bool:
        return True
