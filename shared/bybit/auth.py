"""Bybit V5 signatures. Pure: no clock, no IO; callers pass the timestamps."""
from __future__ import annotations

import hashlib
import hmac

DEFAULT_RECV_WINDOW_MS = 5000


def _hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_rest(secret: str, timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str) -> str:
    """Signature for a REST call; payload is the raw query string (GET) or raw JSON body (POST)."""
    return _hmac_hex(secret, f"{timestamp_ms}{api_key}{recv_window_ms}{payload}")


def sign_ws_auth(secret: str, expires_ms: int) -> str:
    """Signature for the private WebSocket `auth` op."""
    return _hmac_hex(secret, f"GET/realtime{expires_ms}")


def rest_headers(api_key: str, secret: str, timestamp_ms: int, payload: str,
                 recv_window_ms: int = DEFAULT_RECV_WINDOW_MS) -> dict[str, str]:
    return {
        "X-BAPI-API-KEY": api_key,
        "X-BAPI-TIMESTAMP": str(timestamp_ms),
        "X-BAPI-SIGN": sign_rest(secret, timestamp_ms, api_key, recv_window_ms, payload),
        "X-BAPI-RECV-WINDOW": str(recv_window_ms),
        "Content-Type": "application/json",
    }


def timestamp_accepted(server_time_ms: int, timestamp_ms: int, recv_window_ms: int) -> bool:
    """Bybit's acceptance rule: server_time - recv_window <= timestamp < server_time + 1000."""
    return server_time_ms - recv_window_ms <= timestamp_ms < server_time_ms + 1000


def signatures_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
