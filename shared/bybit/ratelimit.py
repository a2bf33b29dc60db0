"""The client side of Bybit's per-account request limit (pure: every time is passed in).

Bybit counts requests per account and endpoint in fixed windows and says, on every answer, how many
remain (`X-Bapi-Limit-Status`) and when the window resets (`X-Bapi-Limit-Reset-Timestamp`, server
clock). The limiter spends exactly that allowance: it starts with one probe, learns the limit and the
window from the headers, converts the server's reset time to the local clock, and never trusts itself
over the server (it keeps the smaller "remaining"). A 10006 empties the window.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class AccountLimiter:
    fallback_limit: int = 10  # used only when the venue sends no limit headers at all
    window_ms: int = 1000
    guard_ms: int = 15  # start a new window a little late: the two clocks never agree exactly
    limit: int | None = None
    remaining: int = 1  # one probe until the first answer tells us the real allowance
    reset_local_ms: int | None = None
    offset_ms: int | None = None  # server clock minus local clock, best (largest) estimate so far
    throttled: int = 0  # how many times the venue answered 10006

    def reserve(self, now_ms: int) -> int:
        """Take a slot and return 0, or return how many ms to wait before asking again."""
        if self.reset_local_ms is not None and self.limit is not None and now_ms >= self.reset_local_ms + self.guard_ms:
            elapsed = now_ms - self.reset_local_ms
            self.reset_local_ms += (elapsed // self.window_ms + 1) * self.window_ms
            self.remaining = self.limit
        if self.remaining > 0:
            self.remaining -= 1
            return 0
        if self.reset_local_ms is None:
            return 10  # the probe's answer has not arrived yet
        return max(1, self.reset_local_ms + self.guard_ms - now_ms)

    def observe(self, limit: int | None, remaining: int | None, reset_ms: int | None,
                server_ms: int | None, local_ms: int) -> None:
        """Learn from an answer's headers; `local_ms` is when the answer arrived."""
        if limit is None or remaining is None or reset_ms is None or limit <= 0:
            if self.limit is None:
                self.limit = self.fallback_limit
                self.reset_local_ms = (local_ms // self.window_ms + 1) * self.window_ms
                self.remaining = max(0, self.fallback_limit - 1)
            return
        if server_ms:
            sample = server_ms - local_ms  # <= the true offset (the answer took time to arrive)
            self.offset_ms = sample if self.offset_ms is None else max(self.offset_ms, sample)
        reset_local = reset_ms - (self.offset_ms or 0)
        self.limit = limit
        half = self.window_ms // 2
        if self.reset_local_ms is None or reset_local > self.reset_local_ms + half:
            self.reset_local_ms = reset_local  # first answer, or the server is a window ahead of us
            self.remaining = remaining
        elif abs(reset_local - self.reset_local_ms) <= half:
            self.remaining = min(self.remaining, remaining)
            self.reset_local_ms = max(self.reset_local_ms, reset_local)
        # else: an answer counted in a window that is already over; nothing to learn

    def failed(self) -> None:
        """A request got no usable answer: if it was the probe, let another probe go."""
        if self.limit is None and self.remaining == 0:
            self.remaining = 1

    def throttle(self, now_ms: int) -> None:
        """The venue said 10006: nothing more in this window (and assume our window was wrong if it ended)."""
        self.throttled += 1
        self.remaining = 0
        if self.limit is None:
            self.limit = self.fallback_limit
        if self.reset_local_ms is None or self.reset_local_ms + self.guard_ms <= now_ms:
            self.reset_local_ms = now_ms + self.window_ms // 10


class SlidingWindowLimiter:
    """At most `limit` requests in any `window_ms` (Bybit's per-IP limit, 600 per 5 s, shared by every bot)."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._sent: deque[int] = deque()

    def reserve(self, now_ms: int) -> int:
        """Take a slot and return 0, or return how many ms to wait before asking again."""
        while self._sent and self._sent[0] <= now_ms - self.window_ms:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            self._sent.append(now_ms)
            return 0
        return max(1, self._sent[0] + self.window_ms - now_ms + 1)
