"""Async Bybit V5 REST client: signs exactly the bytes it sends and surfaces the rate-limit headers.

Numbers stay exact both ways, as on the WebSocket path: an answer's JSON numbers are decoded as
`Decimal` (never float; integers stay int), and a `Decimal` in a request body is sent as its plain
decimal string (the form Bybit takes for qty and price)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import SecretStr
from yarl import URL

from shared.bybit.auth import DEFAULT_RECV_WINDOW_MS, rest_headers
from shared.bybit.fields import decode_json


class BybitApiError(Exception):
    """retCode != 0. `ret_code` is Bybit's code (10006 rate limit, 10002 timestamp, ...)."""

    def __init__(self, ret_code: int, ret_msg: str, path: str = "", limit_reset_ms: int | None = None,
                 limit: int | None = None, limit_status: int | None = None, time_ms: int | None = None) -> None:
        super().__init__(f"Bybit {path} retCode {ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        # the answer's rate-limit headers (a refused request counts too) and server time
        self.limit_reset_ms = limit_reset_ms  # X-Bapi-Limit-Reset-Timestamp (10006: when to retry)
        self.limit = limit
        self.limit_status = limit_status
        self.time_ms = time_ms


class BybitHttpError(Exception):
    """A non-200 HTTP answer (5xx, 403 IP limit) or a body that is not a Bybit envelope."""

    def __init__(self, status: int, path: str = "", detail: str = "") -> None:
        super().__init__(f"Bybit {path} HTTP {status}{': ' + detail if detail else ''}")
        self.status = status


@dataclass(frozen=True)
class RestResponse:
    result: dict[str, Any]
    time_ms: int
    limit: int | None = None
    limit_status: int | None = None
    limit_reset_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _plain(value: object) -> str:
    """A request body's Decimal as Bybit takes it: a plain decimal string, never an exponent."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} to Bybit")
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_body(body: dict[str, Any]) -> str:
    """The exact text a POST sends (and signs); None values are left out."""
    return json.dumps({k: v for k, v in body.items() if v is not None}, default=_plain)


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class BybitRestClient:
    def __init__(self, base_url: str, api_key: str = "", api_secret: SecretStr | str = "",
                 recv_window_ms: int = DEFAULT_RECV_WINDOW_MS, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._secret = api_secret if isinstance(api_secret, SecretStr) else SecretStr(api_secret)
        self.recv_window_ms = recv_window_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"BybitRestClient({self.base_url!r}, api_key={self.api_key[:4]}...)"

    async def __aenter__(self) -> BybitRestClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def _headers(self, payload: str) -> dict[str, str]:
        if not self.api_key:
            return {"Content-Type": "application/json"}
        return rest_headers(self.api_key, self._secret.get_secret_value(), int(time.time() * 1000),
                            payload, self.recv_window_ms)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> RestResponse:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = URL(f"{self.base_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        async with self._http().get(url, headers=self._headers(query)) as resp:
            return await self._parse(resp, path)

    async def post(self, path: str, body: dict[str, Any]) -> RestResponse:
        raw = encode_body(body)
        async with self._http().post(f"{self.base_url}{path}", data=raw.encode(),
                                     headers=self._headers(raw)) as resp:
            return await self._parse(resp, path)

    @staticmethod
    async def _parse(resp: aiohttp.ClientResponse, path: str) -> RestResponse:
        text = await resp.text()
        if resp.status != 200:
            raise BybitHttpError(resp.status, path, text[:200])
        try:
            body = decode_json(text)  # numbers as Decimal / int, as on the WebSocket path
            ret_code = int(body["retCode"])
        except (ValueError, KeyError, TypeError, RecursionError):  # msgspec.DecodeError is a ValueError
            raise BybitHttpError(resp.status, path, "answer is not a Bybit envelope") from None
        if ret_code != 0:
            raise BybitApiError(ret_code, str(body.get("retMsg", "")), path,
                                _int_header(resp.headers, "X-Bapi-Limit-Reset-Timestamp"),
                                _int_header(resp.headers, "X-Bapi-Limit"),
                                _int_header(resp.headers, "X-Bapi-Limit-Status"),
                                int(body.get("time") or 0) or None)
        return RestResponse(
            result=body.get("result") or {},
            time_ms=int(body.get("time") or 0),
            limit=_int_header(resp.headers, "X-Bapi-Limit"),
            limit_status=_int_header(resp.headers, "X-Bapi-Limit-Status"),
            limit_reset_ms=_int_header(resp.headers, "X-Bapi-Limit-Reset-Timestamp"),
            headers=dict(resp.headers),
        )
