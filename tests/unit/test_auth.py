from pybit._http_manager import generate_signature

from shared.bybit.auth import rest_headers, sign_rest, sign_ws_auth, timestamp_accepted


def test_rest_signature_matches_pybit() -> None:
    payload = "category=linear&limit=100&symbol=BTCUSDT"
    ours = sign_rest("s3cr3t", 1_700_000_000_000, "KEY", 5000, payload)
    theirs = generate_signature(False, "s3cr3t", "1700000000000KEY5000" + payload)
    assert ours == theirs


def test_ws_auth_signature_is_hmac_of_get_realtime() -> None:
    assert sign_ws_auth("s3cr3t", 1_700_000_000_000) == generate_signature(False, "s3cr3t", "GET/realtime1700000000000")


def test_headers_carry_key_timestamp_window_and_signature() -> None:
    h = rest_headers("KEY", "s3cr3t", 1_700_000_000_000, "{}", 7000)
    assert h["X-BAPI-API-KEY"] == "KEY" and h["X-BAPI-TIMESTAMP"] == "1700000000000"
    assert h["X-BAPI-RECV-WINDOW"] == "7000"
    assert h["X-BAPI-SIGN"] == sign_rest("s3cr3t", 1_700_000_000_000, "KEY", 7000, "{}")


def test_timestamp_window_rule() -> None:
    server = 1_000_000
    assert timestamp_accepted(server, server - 5000, 5000)
    assert not timestamp_accepted(server, server - 5001, 5000)
    assert timestamp_accepted(server, server + 999, 5000)
    assert not timestamp_accepted(server, server + 1000, 5000)
