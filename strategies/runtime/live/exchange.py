"""The bot's REST access to the exchange (IO): its own key, the per-account limits, idempotent orders.

- Every signed call takes a slot from the per-account, per-endpoint limiter (shared/bybit/ratelimit.py),
  which learns the allowance from the `X-Bapi-Limit*` headers; a 10006 empties the window and the call
  waits until the reset the answer names, then tries again (a few times, never a storm).
- An order is idempotent through its orderLinkId: after a timeout, a dropped connection or a 5xx the
  order is looked up by orderLinkId before it is sent again, and 110072 (duplicate orderLinkId) means
  an earlier attempt placed it.
- Refusals (10001 parameters, 110007 balance, 110017 reduce-only without position, and any other
  business code) are not retried: they come back as a `Rejection` for the strategy.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from shared.bybit.ratelimit import AccountLimiter
from shared.bybit.rest_client import BybitApiError, BybitHttpError, BybitRestClient, RestResponse
from strategies.runtime.live.parsing import CATEGORY, request_for
from strategies.runtime.model import Rejection
from strategies.runtime.orders import Decision, PlaceOrder

log = structlog.get_logger()
RATE_LIMITED = 10006
DUPLICATE_LINK_ID = 110072
# answers that mean "nothing to do": not modified (trading-stop), leverage unchanged, unknown order on cancel
HARMLESS = {34040: "not modified", 110043: "leverage unchanged", 110001: "order not found"}
RETRYABLE_CODES = frozenset({10002, 10016})  # timestamp outside the recv window, server busy


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ExchangeStats:
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    rejections: int = 0
    lookups: int = 0
    codes: dict[int, int] = field(default_factory=dict)


class Exchange:
    def __init__(self, bot_id: str, rest: BybitRestClient, *, max_attempts: int = 5,
                 backoff_s: float = 0.2, backoff_cap_s: float = 5.0) -> None:
        self.bot_id = bot_id
        self.rest = rest
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.limiters: dict[str, AccountLimiter] = {}
        self.stats = ExchangeStats()

    async def close(self) -> None:
        await self.rest.close()

    async def _slot(self, path: str) -> AccountLimiter:
        limiter = self.limiters.setdefault(path, AccountLimiter())
        while (wait_ms := limiter.reserve(now_ms())) > 0:
            await asyncio.sleep(wait_ms / 1000)
        return limiter

    async def _call(self, method: str, path: str, params: dict[str, Any]) -> RestResponse:
        """One signed call with the limiter; 10006 waits for the reset named by the answer, then
        retries (at most `max_attempts`); every other error is raised to the caller."""
        attempt = 0
        while True:
            limiter = await self._slot(path)
            self.stats.requests += 1
            try:
                resp = await (self.rest.get(path, params) if method == "GET" else self.rest.post(path, params))
            except BybitApiError as exc:
                self.stats.codes[exc.ret_code] = self.stats.codes.get(exc.ret_code, 0) + 1
                if exc.ret_code != RATE_LIMITED:  # a refused request was counted: learn from its headers
                    limiter.observe(exc.limit, exc.limit_status, exc.limit_reset_ms, exc.time_ms, now_ms())
                if exc.ret_code != RATE_LIMITED and exc.ret_code not in RETRYABLE_CODES:
                    raise
                attempt += 1
                if attempt >= self.max_attempts:
                    raise
                t = now_ms()
                limiter.throttle(t)
                if exc.ret_code == RATE_LIMITED:
                    self.stats.throttled += 1
                    wait_s = max(0.05, ((exc.limit_reset_ms or t + 1000) - t) / 1000)
                else:
                    wait_s = min(self.backoff_cap_s, self.backoff_s * 2 ** attempt)
                log.warning("exchange_backoff", bot_id=self.bot_id, path=path, code=exc.ret_code, wait_s=round(wait_s, 3))
                await asyncio.sleep(min(wait_s, self.backoff_cap_s))
                continue
            except BaseException:
                limiter.failed()
                raise
            limiter.observe(resp.limit, resp.limit_status, resp.limit_reset_ms, resp.time_ms or None, now_ms())
            return resp

    async def get(self, path: str, params: dict[str, Any]) -> RestResponse:
        """A query; transport errors and 5xx are retried with backoff (queries are safe to repeat)."""
        for attempt in range(self.max_attempts):
            try:
                return await self._call("GET", path, params)
            except (BybitHttpError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if attempt + 1 >= self.max_attempts or (isinstance(exc, BybitHttpError) and exc.status < 500):
                    raise
                self.stats.retries += 1
                await asyncio.sleep(min(self.backoff_cap_s, self.backoff_s * 2 ** attempt))
        raise AssertionError("unreachable")

    # --- queries -------------------------------------------------------------------------------
    async def klines(self, symbol: str, interval: str, end_ms: int, limit: int) -> list[list[Any]]:
        """Public `/v5/market/kline` rows (newest first) ending at `end_ms` (a candle start)."""
        resp = await self.get("/v5/market/kline", {"category": CATEGORY, "symbol": symbol, "interval": interval,
                                                   "end": end_ms, "limit": limit})
        return list(resp.result.get("list") or [])

    async def positions(self) -> list[dict[str, Any]]:
        resp = await self.get("/v5/position/list", {"category": CATEGORY, "settleCoin": "USDT", "limit": 200})
        return list(resp.result.get("list") or [])

    async def open_orders(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            resp = await self.get("/v5/order/realtime", {"category": CATEGORY, "settleCoin": "USDT", "limit": 50,
                                                         "cursor": cursor or None})
            rows += resp.result.get("list") or []
            cursor = resp.result.get("nextPageCursor") or ""
            if not cursor:
                return rows

    async def wallet(self) -> dict[str, Any]:
        resp = await self.get("/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        accounts = resp.result.get("list") or [{}]
        return dict(accounts[0])

    async def instruments(self, symbols: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for s in symbols:
            resp = await self.get("/v5/market/instruments-info", {"category": CATEGORY, "symbol": s})
            rows += resp.result.get("list") or []
        return rows

    async def find_order(self, symbol: str, link_id: str) -> dict[str, Any] | None:
        self.stats.lookups += 1
        resp = await self.get("/v5/order/realtime", {"category": CATEGORY, "symbol": symbol, "orderLinkId": link_id})
        found = resp.result.get("list") or []
        return dict(found[0]) if found else None

    # --- decisions -----------------------------------------------------------------------------
    async def execute(self, decisions: Sequence[Decision]) -> list[Rejection]:
        """Send decisions in order; the refusals come back (for `on_rejected`), nothing is retried
        after a refusal."""
        rejections = []
        for d in decisions:
            rej = await self._one(d)
            if rej is not None:
                rejections.append(rej)
        return rejections

    async def _one(self, d: Decision) -> Rejection | None:
        path, body = request_for(d.intent)
        intent = d.intent
        link = intent.order_link_id if isinstance(intent, PlaceOrder) else ""
        symbol = getattr(intent, "symbol", None) or ""
        for attempt in range(self.max_attempts):
            try:
                await self._call("POST", path, body)
                log.info("order_sent", bot_id=self.bot_id, path=path, symbol=symbol, order_link_id=link or None)
                return None
            except BybitApiError as exc:
                if exc.ret_code == DUPLICATE_LINK_ID and link:
                    log.info("order_already_placed", bot_id=self.bot_id, order_link_id=link)
                    return None
                if exc.ret_code in HARMLESS:
                    log.info("order_noop", bot_id=self.bot_id, path=path, code=exc.ret_code, why=HARMLESS[exc.ret_code])
                    return None
                self.stats.rejections += 1
                log.warning("order_rejected", bot_id=self.bot_id, path=path, symbol=symbol, order_link_id=link or None,
                            code=exc.ret_code, message=exc.ret_msg)
                return Rejection(now_ms(), symbol, link, exc.ret_code, exc.ret_msg)
            except (BybitHttpError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if isinstance(exc, BybitHttpError) and exc.status < 500:
                    self.stats.rejections += 1
                    return Rejection(now_ms(), symbol, link, exc.status, str(exc))
                self.stats.retries += 1
                log.warning("order_uncertain", bot_id=self.bot_id, path=path, order_link_id=link or None,
                            error=type(exc).__name__, attempt=attempt + 1)
                await asyncio.sleep(min(self.backoff_cap_s, self.backoff_s * 2 ** attempt))
                if link:
                    try:
                        if await self.find_order(symbol, link) is not None:
                            log.info("order_found_after_retry", bot_id=self.bot_id, order_link_id=link)
                            return None
                    except (BybitApiError, BybitHttpError, aiohttp.ClientError, asyncio.TimeoutError):
                        pass  # unknown still: sending again is safe (110072 if it was placed)
        self.stats.rejections += 1
        return Rejection(now_ms(), symbol, link, -1, f"{path}: no answer after {self.max_attempts} attempts")
