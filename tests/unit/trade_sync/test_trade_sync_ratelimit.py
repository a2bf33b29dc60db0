from __future__ import annotations

from shared.bybit.ratelimit import AccountLimiter, SlidingWindowLimiter


def test_one_probe_until_the_first_answer() -> None:
    lim = AccountLimiter()
    assert lim.reserve(1_000) == 0
    assert lim.reserve(1_001) > 0  # the allowance is unknown until the venue says it
    lim.observe(50, 49, 2_000, server_ms=1_010, local_ms=1_010)
    assert all(lim.reserve(1_020 + i) == 0 for i in range(49))
    wait = lim.reserve(1_100)
    assert wait == 2_000 + lim.guard_ms - 1_100  # the window's allowance is spent: wait for the reset
    assert lim.reserve(2_000 + lim.guard_ms) == 0  # a new window: the limit again
    assert lim.remaining == 49


def test_the_server_is_believed_when_it_says_less_remains() -> None:
    lim = AccountLimiter()
    lim.reserve(0)
    lim.observe(50, 49, 1_000, server_ms=0, local_ms=0)
    lim.reserve(10)
    lim.observe(50, 10, 1_000, server_ms=12, local_ms=12)  # someone else spends this key too
    assert lim.remaining == 10


def test_reset_time_is_converted_from_the_server_clock() -> None:
    lim = AccountLimiter()
    lim.reserve(0)
    lim.observe(50, 49, 5_000_000 + 1_000, server_ms=5_000_000, local_ms=0)  # server clock 5000 s ahead
    assert lim.reset_local_ms == 1_000


def test_a_lost_probe_lets_another_probe_go() -> None:
    lim = AccountLimiter()
    assert lim.reserve(0) == 0
    lim.failed()  # e.g. HTTP 503: no headers learned
    assert lim.reserve(5) == 0


def test_throttle_empties_the_window() -> None:
    lim = AccountLimiter()
    lim.reserve(0)
    lim.observe(50, 49, 1_000, server_ms=0, local_ms=0)
    lim.throttle(100)
    assert lim.throttled == 1
    assert lim.reserve(101) == 1_000 + lim.guard_ms - 101
    assert lim.reserve(1_000 + lim.guard_ms) == 0


def test_throttle_before_any_answer_falls_back_to_a_short_wait() -> None:
    lim = AccountLimiter()
    lim.reserve(0)
    lim.throttle(10)
    assert 0 < lim.reserve(11) <= 1_000
    assert lim.reserve(10 + 1_000) == 0


def test_no_headers_means_a_conservative_fixed_rate() -> None:
    lim = AccountLimiter(fallback_limit=3)
    lim.reserve(0)
    lim.observe(None, None, None, server_ms=None, local_ms=500)
    assert [lim.reserve(501) for _ in range(3)] == [0, 0, 1_000 + lim.guard_ms - 501]


def test_sliding_window_never_exceeds_its_limit() -> None:
    sw = SlidingWindowLimiter(3, 5_000)
    assert [sw.reserve(t) for t in (0, 1, 2)] == [0, 0, 0]
    assert sw.reserve(3) == 5_000 - 3 + 1
    assert sw.reserve(5_001) == 0


def test_simulated_fixed_window_server_is_never_exceeded() -> None:
    """Drive the limiter against a fixed-window server model: no request is ever refused."""
    lim = AccountLimiter()
    counts: dict[int, int] = {}
    now = 0
    refused = 0
    sent = 0
    while sent < 500:
        wait = lim.reserve(now)
        if wait:
            now += wait
            continue
        window = now // 1_000
        counts[window] = counts.get(window, 0) + 1
        if counts[window] > 50:
            refused += 1
            lim.throttle(now + 3)
        else:
            sent += 1
            lim.observe(50, 50 - counts[window], (window + 1) * 1_000, server_ms=now + 2, local_ms=now + 3)
        now += 3
    assert refused == 0
    assert now < 10 * 1_000 + 500  # 500 requests at 50/s: about ten windows, not more
