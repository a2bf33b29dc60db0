"""`make run`'s venue: wall replay (venue time = wall time), and a state file of an older --speed run moved aside."""
from __future__ import annotations

import json
from pathlib import Path

from infra.run_local import children, local_keys, retire_old_venue_state


def test_make_run_venue_runs_wall_replay_without_speed(tmp_path: Path) -> None:
    venue = next(c for c in children(18080, local_keys(tmp_path / "keys.env")) if c.name == "bybit_sim")
    assert "--wall-replay" in venue.argv and "--speed" not in venue.argv and "--stepped" not in venue.argv


def _state(path: Path, **extra: object) -> None:
    path.write_text(json.dumps({"version": 1, "venue_time_ms": 1_744_000_000_000, "seqs": {}, "priority": 0,
                                "pins": {}, "accounts": [], **extra}))


def test_a_speed_run_state_file_is_moved_aside(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    _state(state)
    assert retire_old_venue_state(state) == tmp_path / "state.json.before-wall-replay"
    assert not state.exists() and (tmp_path / "state.json.before-wall-replay").exists()


def test_a_wall_replay_state_file_and_no_file_are_kept(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert retire_old_venue_state(state) is None
    _state(state, wall_replay_shift_ms=7 * 86_400_000 * 85)
    assert retire_old_venue_state(state) is None and state.exists()
