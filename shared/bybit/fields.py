"""Bybit V5 field readers: one raw JSON value -> one checked Python value (pure; raise ParseError),
exchange times, and JSON decoding with exact Decimals."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from shared.bybit.records import EPOCH, ParseError, SIDES

# Bounds that keep a parsed value storable (NUMERIC, bigint, text without NUL) so one odd row
# can never poison a whole database batch.
_MAX_ABS = Decimal(10) ** 24
_MIN_EXPONENT = -60
_MAX_TEXT = 256
_MAX_BIGINT = 2**63 - 1
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z

_PLAIN_DECIMAL = re.compile(r"-?\d{1,24}(?:\.\d{1,40})?")
_plain_decimal = _PLAIN_DECIMAL.fullmatch
_plain_int = re.compile(r"-?\d{1,19}").fullmatch


# ---- field readers -------------------------------------------------------------------------

def _get(raw: dict[str, Any], key: str) -> Any:
    if key not in raw:
        raise ParseError(f"missing field {key}")
    return raw[key]


def _text(value: Any, key: str, *, allow_empty: bool = True) -> str:
    if type(value) is str and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value and (
            allow_empty or value):
        return value  # the common case; ASCII cannot hold a lone surrogate
    if not isinstance(value, str):
        raise ParseError(f"field {key} is not a string")
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise ParseError(f"field {key} is too long or has NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError(f"field {key} is not valid unicode") from exc
    if not allow_empty and value == "":
        raise ParseError(f"field {key} is empty")
    return value


_MISSING: Any = object()

# The readers below inline the common case (a short ASCII string, a plain decimal string) before
# falling back to the full checks: they run for every field of every row.


def _req_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, _MISSING)
    if type(value) is str and value and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value:
        return value
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return _text(value, key, allow_empty=False)


def _opt_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if type(value) is str and value and value.isascii() and len(value) <= _MAX_TEXT and "\x00" not in value:
        return value
    if value is None or value == "":
        return None
    return _text(value, key)


def _decimal(value: Any, key: str) -> Decimal:
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)  # the common case, already within every bound below
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ParseError(f"field {key} is not a decimal string")
    if isinstance(value, str):
        if len(value) > 64:
            raise ParseError(f"field {key} is too long")
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ParseError(f"field {key} is not a decimal") from exc
    else:
        result = Decimal(value)
    if not result.is_finite() or abs(result) >= _MAX_ABS:
        raise ParseError(f"field {key} is out of range")
    exponent = result.as_tuple().exponent
    if not isinstance(exponent, int) or not _MIN_EXPONENT <= exponent <= 24:
        raise ParseError(f"field {key} has an unstorable exponent")
    return result


def _req_dec(raw: dict[str, Any], key: str) -> Decimal:
    value = raw.get(key, _MISSING)
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return _decimal(value, key)


def _opt_dec(raw: dict[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    if type(value) is str and _plain_decimal(value):
        return Decimal(value)
    if value is None or value == "":
        return None
    return _decimal(value, key)


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ParseError(f"field {key} is not an integer")
    if isinstance(value, str) and _plain_int(value):
        result = int(value)
    elif isinstance(value, int):
        result = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        result = int(value)
    else:
        raise ParseError(f"field {key} is not an integer")
    if abs(result) > _MAX_BIGINT:
        raise ParseError(f"field {key} is out of range")
    return result


def _opt_int(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if type(value) is int and -_MAX_BIGINT <= value <= _MAX_BIGINT:
        return value
    if value is None or value == "":
        return None
    return _int(value, key)


def ms_to_datetime(ms: int) -> datetime:
    """Exchange epoch milliseconds to an aware UTC datetime, without passing through float."""
    if not 0 <= ms <= _MAX_MS:
        raise ParseError("timestamp out of range")
    return _ms_to_datetime(ms)


@lru_cache(maxsize=4096)
def _ms_to_datetime(ms: int) -> datetime:
    # The rows of a frame (and an order's created/updated times) repeat the same few milliseconds.
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _req_time(raw: dict[str, Any], key: str) -> datetime:
    value = raw.get(key, _MISSING)
    if type(value) is str and len(value) <= 15 and _plain_int(value):  # well within bigint
        return ms_to_datetime(int(value))
    if value is _MISSING:
        raise ParseError(f"missing field {key}")
    return ms_to_datetime(_int(value, key))


def _opt_time(raw: dict[str, Any], key: str) -> datetime | None:
    value = _opt_int(raw, key)
    return None if value is None or value == 0 else ms_to_datetime(value)


def _opt_bool(raw: dict[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, bool):
        raise ParseError(f"field {key} is not a boolean")
    return value


def _side(raw: dict[str, Any], key: str = "side") -> str:
    value = _text(_get(raw, key), key)
    if value not in SIDES:
        raise ParseError(f"field {key} is not Buy/Sell")
    return value


def _category(raw: dict[str, Any], default: str | None) -> str:
    value = raw.get("category")
    if value is None or value == "":
        if not default:
            raise ParseError("missing field category")
        return _text(default, "category")
    return _text(value, "category")


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def dump_raw(value: Any) -> str:
    """A JSON text for any parsed value (Decimals as strings), for dead letters."""
    try:
        return json.dumps(value, default=str, ensure_ascii=True, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return repr(value)[:100_000]


# Strict JSON; JSON floats become exact Decimals. About three times faster than the json module.
_EXACT_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(text: str | bytes) -> Any:
    """JSON text -> Python values, JSON floats as exact Decimals (pure). What strict JSON refuses but the
    json module reads (NaN, Infinity, lone surrogates) is read by the json module, so callers can judge it
    value by value. Raises ValueError or RecursionError when neither reads it."""
    try:
        return _EXACT_DECODER.decode(text)
    except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
        return json.loads(text, parse_float=Decimal)
