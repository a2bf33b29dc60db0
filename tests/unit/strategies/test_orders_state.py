"""orderLinkId format and the persistent state a strategy keeps."""
from __future__ import annotations

import re

import pytest

from strategies.runtime.orders import base36, make_link_id, reason_of
from strategies.runtime.state import InMemoryStateStore, StrategyState


def test_link_id_format_and_limits() -> None:
    link = make_link_id("shortseller_001", "entry", 123456)
    assert link == "shortseller_001-entry-2n9c"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,36}", link)
    assert reason_of(link, "shortseller_001") == "entry"
    assert reason_of("other_001-entry-1", "shortseller_001") == ""
    assert len(make_link_id("shortseller_001", "breakeven_mov", 36**6 - 1)) == 36
    with pytest.raises(ValueError, match="longer than 36"):
        make_link_id("shortseller_001", "breakeven_move", 36**6 - 1)
    with pytest.raises(ValueError, match="reason"):
        make_link_id("x", "bad-reason", 1)
    assert base36(0) == "0" and base36(35) == "z" and base36(36) == "10"


def test_state_tracks_changes_and_rolls_back() -> None:
    st = StrategyState({"a": 1})
    st.set("b", [1, 2])
    st.incr("n")
    st.commit()
    assert st.take_changes() == ({"b": [1, 2], "n": 1}, set())
    st.set("a", 2)
    st.delete("b")
    st.incr("n")
    st.rollback()
    assert st.snapshot() == {"a": 1, "b": [1, 2], "n": 1}
    assert st.take_changes() == ({}, set())
    with pytest.raises(TypeError, match="not JSON"):
        st.set("bad", object())  # type: ignore[arg-type]
    got = st.get("b")
    got.append(3)  # type: ignore[union-attr]
    assert st.get("b") == [1, 2]


async def test_in_memory_store_round_trips_json() -> None:
    store = InMemoryStateStore()
    await store.save({"cooldown_until": 123, "plan": {"sl": "1.5"}})
    await store.save({"n": 2})
    await store.delete(["n", "missing"])
    assert await store.load() == {"cooldown_until": 123, "plan": {"sl": "1.5"}}
    loaded = await store.load()
    loaded["plan"]["sl"] = "9"
    assert (await store.load())["plan"]["sl"] == "1.5"
