"""A strategy's persistent key/value state and where it is kept (`StateStore`).

Values are JSON (str, int, float, bool, None, lists, dicts). The runtime saves the keys a handler
changed after the handler returns and before the handler's orders are sent, so the order-id counter
and the decisions behind an order are stored before the order exists. A PostgreSQL store implements
the same protocol.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Protocol, Union

_MISSING = object()
JSONValue = Union[str, int, float, bool, None, list["JSONValue"], dict[str, "JSONValue"]]


class StateStore(Protocol):
    async def load(self) -> dict[str, JSONValue]: ...

    async def save(self, items: Mapping[str, JSONValue]) -> None: ...

    async def delete(self, keys: Iterable[str]) -> None: ...


class InMemoryStateStore:
    """For tests and backtests; values are copied in and out as JSON would."""

    def __init__(self, initial: Mapping[str, JSONValue] | None = None) -> None:
        self.data: dict[str, JSONValue] = {k: _roundtrip(v) for k, v in (initial or {}).items()}
        self.saves = 0

    async def load(self) -> dict[str, JSONValue]:
        return {k: _roundtrip(v) for k, v in self.data.items()}

    async def save(self, items: Mapping[str, JSONValue]) -> None:
        for k, v in items.items():
            self.data[k] = _roundtrip(v)
        self.saves += 1

    async def delete(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.data.pop(k, None)


def _roundtrip(value: JSONValue) -> JSONValue:
    return json.loads(json.dumps(value))


class StrategyState:
    """The live dict a strategy reads and writes through `ctx.state`; tracks what changed.

    A mutable value (list, dict) read with `get` is a copy: write it back with `set` to change it.
    """

    def __init__(self, values: Mapping[str, JSONValue] | None = None) -> None:
        self._values: dict[str, JSONValue] = dict(values or {})
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._journal: dict[str, object] = {}  # key -> value before the current handler

    def _remember(self, key: str) -> None:
        if key not in self._journal:
            old = self._values.get(key, _MISSING)
            self._journal[key] = old if old is _MISSING else copy.deepcopy(old)

    def get(self, key: str, default: JSONValue = None) -> JSONValue:
        value = self._values.get(key, default)
        return copy.deepcopy(value) if isinstance(value, (list, dict)) else value

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def set(self, key: str, value: JSONValue) -> None:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state {key!r}: value is not JSON ({exc})") from None
        self._remember(key)
        self._values[key] = copy.deepcopy(value) if isinstance(value, (list, dict)) else value
        self._dirty.add(key)
        self._deleted.discard(key)

    def delete(self, key: str) -> None:
        self._remember(key)
        if self._values.pop(key, None) is not None or key in self._dirty:
            self._deleted.add(key)
        self._dirty.discard(key)

    def incr(self, key: str, by: int = 1) -> int:
        self._remember(key)
        value = int(self._values.get(key) or 0) + by  # type: ignore[arg-type]
        self._values[key] = value
        self._dirty.add(key)
        return value

    def snapshot(self) -> dict[str, JSONValue]:
        return copy.deepcopy(self._values)

    def take_changes(self) -> tuple[dict[str, JSONValue], set[str]]:
        """(changed items, deleted keys) since the last call; the caller persists them."""
        changed = {k: copy.deepcopy(self._values[k]) for k in self._dirty}
        deleted = set(self._deleted)
        self._dirty.clear()
        self._deleted.clear()
        return changed, deleted

    def commit(self) -> None:
        """The handler succeeded: its writes stand (and are saved with `take_changes`)."""
        self._journal.clear()

    def rollback(self) -> None:
        """Undo the writes of a handler that raised."""
        for key, old in self._journal.items():
            if old is _MISSING:
                self._values.pop(key, None)
            else:
                self._values[key] = old  # type: ignore[assignment]
            self._dirty.discard(key)
            self._deleted.discard(key)
        self._journal.clear()
