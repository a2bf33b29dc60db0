"""One bot's REST access to the exchange: its own key and limiter, retries that respect the limits (IO)."""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared.bybit.records import PositionSnapshot
from shared.bybit.parse_rows import parse_position_page
from shared.bybit.rest_client import BybitApiError, BybitHttpError, BybitRestClient, RestResponse
from services.trade_sync.errors import ExchangeError
from shared.bybit.ratelimit import AccountLimiter, SlidingWindowLimiter
from services.trade_sync.windows import Window

PAGE_LIMIT = 100  # Bybit's maximum for /v5/execution/list
RATE_LIMITED = 10006
RETRYABLE_CODES = frozenset({10002, 10016})  # timestamp outside the window, server error
_REFUSALS = {
    10003: "the exchange rejected the API key (check {prefix}_BYBIT_API_KEY)",
    10004: "the exchange rejected the request signature (check {prefix}_BYBIT_API_SECRET)",
    10005: "the API key lacks permission for {path}",
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class RequestStats:
    requests: int = 0
    pages: int = 0
    retries: int = 0


class AccountClient:
    def __init__(self, bot_id: str, env_prefix: str, rest: BybitRestClient, *, max_attempts: int = 8,
                 limiter: AccountLimiter | None = None, backoff_s: float = 0.25, backoff_cap_s: float = 8.0,
                 rate_limit_patience_s: float = 60.0, ip_limiter: SlidingWindowLimiter | None = None) -> None:
        self.bot_id = bot_id
        self.env_prefix = env_prefix
        self.rest = rest
        self.limiter = limiter or AccountLimiter()
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.rate_limit_patience_s = rate_limit_patience_s
        self.ip_limiter = ip_limiter
        self.stats = RequestStats()

    async def close(self) -> None:
        await self.rest.close()

    async def _slot(self) -> None:
        while True:
            wait_ms = self.limiter.reserve(now_ms())
            if wait_ms <= 0:
                break
            await asyncio.sleep(wait_ms / 1000)
        while self.ip_limiter is not None:
            wait_ms = self.ip_limiter.reserve(now_ms())
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_cap_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)

    async def get(self, path: str, params: dict[str, Any]) -> RestResponse:
        """A signed GET; 10006, 10002, 10016, 5xx, 403 and dropped connections are retried with backoff."""
        last = ""
        failures = 0
        throttled = 0
        deadline = time.monotonic() + self.rate_limit_patience_s
        while True:
            await self._slot()
            self.stats.requests += 1
            try:
                resp = await self.rest.get(path, params)
            except BybitApiError as exc:
                if exc.ret_code == RATE_LIMITED:
                    self.limiter.throttle(now_ms())
                    throttled += 1
                    self.stats.retries += 1
                    if time.monotonic() > deadline:
                        raise ExchangeError(self.bot_id, f"{path} stayed rate limited (retCode 10006) for "
                                                         f"{self.rate_limit_patience_s:.0f} s") from None
                    if throttled > 2:  # our view of the window is off, or someone else spends the allowance
                        await asyncio.sleep(self._backoff(min(throttled - 2, 5)))
                    continue
                if exc.ret_code not in RETRYABLE_CODES:
                    self.limiter.failed()
                    raise ExchangeError(self.bot_id, self._refusal(exc, path)) from None
                last = f"retCode {exc.ret_code}"
            except BybitHttpError as exc:
                if exc.status < 500 and exc.status != 403:
                    raise ExchangeError(self.bot_id, f"{path} answered HTTP {exc.status}") from None
                last = f"HTTP {exc.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last = f"connection failed ({type(exc).__name__})"
            else:
                self.limiter.observe(resp.limit, resp.limit_status, resp.limit_reset_ms, resp.time_ms, now_ms())
                return resp
            self.limiter.failed()
            failures += 1
            self.stats.retries += 1
            if failures >= self.max_attempts:
                raise ExchangeError(self.bot_id, f"{path} kept failing after {failures} attempts: {last}")
            await asyncio.sleep(self._backoff(failures - 1) * (4 if last == "HTTP 403" else 1))

    def _refusal(self, exc: BybitApiError, path: str) -> str:
        template = _REFUSALS.get(exc.ret_code)
        if template is not None:
            return f"{template.format(prefix=self.env_prefix, path=path)} (retCode {exc.ret_code})"
        # retMsg of a signature error echoes the signed string; other messages are safe but kept short
        return f"the exchange refused {path}: retCode {exc.ret_code} {exc.ret_msg[:120]}"

    async def execution_pages(self, window: Window, symbol: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of one window, following `nextPageCursor` to its empty end."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"category": "linear", "symbol": symbol, **window.params(),
                                      "limit": PAGE_LIMIT, "cursor": cursor}
            resp = await self.get("/v5/execution/list", params)
            rows = resp.result.get("list")
            if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("execId") for r in rows):
                raise ExchangeError(self.bot_id, "/v5/execution/list answered a page without a list of executions")
            self.stats.pages += 1
            yield rows
            cursor = resp.result.get("nextPageCursor") or None
            if cursor is None:
                return
            if cursor in seen:
                raise ExchangeError(self.bot_id, "/v5/execution/list returned the same cursor twice")
            seen.add(cursor)

    async def positions(self, symbol: str | None = None) -> tuple[list[PositionSnapshot], list[dict[str, Any]]]:
        """Open USDT-linear positions (or one symbol's row, flat or not): parsed, and the raw rows."""
        parsed: list[PositionSnapshot] = []
        raw_rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"category": "linear", "symbol": symbol,
                                      "settleCoin": None if symbol else "USDT", "limit": 200, "cursor": cursor}
            resp = await self.get("/v5/position/list", params)
            good, bad, cursor_next = parse_position_page(resp.result)
            if bad:
                raise ExchangeError(self.bot_id, f"/v5/position/list answered an unreadable row: {bad[0].reason}")
            parsed.extend(good)
            raw_rows.extend(r for r in resp.result.get("list", []) if isinstance(r, dict))
            if not cursor_next or cursor_next == cursor:
                return parsed, raw_rows
            cursor = cursor_next
