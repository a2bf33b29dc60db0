"""Bybit-style request limits: fixed windows per IP and per (account, endpoint group)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LimitVerdict:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int


class WindowCounter:
    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, now_ms: int) -> LimitVerdict:
        window = now_ms // self.window_ms
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        if len(self._counts) > 10_000:
            self._counts.clear()
        reset = (window + 1) * self.window_ms
        if count >= self.limit:
            self._counts[key] = (start, count)
            return LimitVerdict(False, self.limit, 0, reset)
        count += 1
        self._counts[key] = (start, count)
        return LimitVerdict(True, self.limit, self.limit - count, reset)


class RateLimits:
    """Per IP: `ip_limit` requests per 5 s (HTTP 403 past it). Per account: per second, per group."""

    def __init__(self, ip_limit: int = 600, order_limit: int = 10, query_limit: int = 50) -> None:
        self.ip = WindowCounter(ip_limit, 5_000)
        self.groups = {"order": WindowCounter(order_limit, 1_000), "query": WindowCounter(query_limit, 1_000),
                       "leverage": WindowCounter(order_limit, 1_000)}

    def hit_ip(self, ip: str, now_ms: int) -> LimitVerdict:
        return self.ip.hit(ip, now_ms)

    def hit_account(self, group: str, api_key: str, path: str, now_ms: int) -> LimitVerdict:
        return self.groups[group].hit(f"{api_key}|{path}", now_ms)
