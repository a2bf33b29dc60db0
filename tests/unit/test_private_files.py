"""Files holding secrets are created 0600 from their first byte: no moment where another user could
read them, whatever the umask. An audit hook looks at the folder at every file operation inside it."""
from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.localstack import LocalStack, StackConfig
from infra.run_local import local_keys
from services.bybit_sim.state import write_state

_watched: list[tuple[Path, list[tuple[str, str, int]]]] = []


def _hook(event: str, args: tuple[object, ...]) -> None:
    if not _watched or event not in ("open", "os.chmod", "os.rename", "os.replace", "os.chown"):
        return
    folder, seen = _watched[-1]
    if not any(isinstance(a, (str, Path)) and str(a).startswith(str(folder)) for a in args):
        return
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            seen.append((event, entry.name, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)))


sys.addaudithook(_hook)


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, list[tuple[str, str, int]]]]:
    old = os.umask(0)  # the worst umask: anything created without an explicit mode is world-readable
    item = (tmp_path, [])
    _watched.append(item)
    try:
        yield item
    finally:
        _watched.remove(item)
        os.umask(old)


def _assert_private(path: Path, seen: list[tuple[str, str, int]]) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert seen, "the audit hook saw no file operation"
    exposed = [s for s in seen if s[2] != 0o600]
    assert not exposed, f"a file was readable by others while being written: {exposed}"
    assert [p.name for p in path.parent.iterdir() if p.is_file()] == [path.name], "a temporary file was left"


def test_local_keys_file(watched: tuple[Path, list[tuple[str, str, int]]]) -> None:
    folder, seen = watched
    keys = local_keys(folder / "local-keys.env")
    assert len(keys) == 6 and local_keys(folder / "local-keys.env") == keys
    _assert_private(folder / "local-keys.env", seen)


def test_stack_env_file(watched: tuple[Path, list[tuple[str, str, int]]]) -> None:
    folder, seen = watched
    stack = LocalStack(StackConfig.for_base(folder / "stack", 30590))
    secrets = stack.secrets()  # writes stack/secrets.env (another folder: checked below)
    seen.clear()
    stack.write_env_file(folder / "stack.env")
    assert f"POSTGRES_PASSWORD='{secrets['POSTGRES_PASSWORD']}'" in (folder / "stack.env").read_text()
    _assert_private(folder / "stack.env", seen)


def test_stack_secrets_file(watched: tuple[Path, list[tuple[str, str, int]]]) -> None:
    folder, seen = watched
    stack = LocalStack(StackConfig.for_base(folder, 30590))
    values = stack.secrets()
    assert stack.secrets() == values
    _assert_private(folder / "secrets.env", seen)


def test_venue_state_file(watched: tuple[Path, list[tuple[str, str, int]]]) -> None:
    folder, seen = watched
    write_state(folder / "state.json", {"version": 1, "accounts": [{"api_key": "k", "secret": "s" * 24}]})
    write_state(folder / "state.json", {"version": 1, "accounts": []})
    _assert_private(folder / "state.json", seen)
