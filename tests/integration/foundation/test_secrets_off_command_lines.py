"""No password on a command line (where every local user can read it in the process list): the
local stack's commands, the local supervisor's children, and the production Redis command, run here."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from infra.localstack import LocalStack, StackConfig
from infra.run_local import child_env, children, local_keys
from tests.support.stack import REPO

pytestmark = pytest.mark.integration
PORT_BASE = int(os.environ.get("ALPHA_TEST_PORT_BASE", "25400")) + 5  # a stack of this test's own

_argvs: list[list[str]] = []
_recording: list[bool] = []


def _hook(event: str, args: tuple[object, ...]) -> None:
    if _recording and event == "subprocess.Popen":
        _argvs.append([str(a) for a in (args[1] or [])])


sys.addaudithook(_hook)


def test_local_stack_puts_no_password_on_a_command_line(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig.for_base(tmp_path / "stack", PORT_BASE))
    _recording.append(True)
    try:
        stack.up()
        stack.stop("redis")
        stack.start("redis")
    finally:
        _recording.clear()
        stack.down()
    secrets = stack.secrets().values()
    assert len(_argvs) >= 6, _argvs  # initdb, pg_ctl, psql bootstrap, pgbouncer, redis, migrate
    assert any(Path(a[0]).name == "psql" and str(REPO / "infra/postgres/init/bootstrap.sql") in a for a in _argvs)
    for argv in _argvs:
        for secret in secrets:
            assert secret not in " ".join(argv), f"a password on the command line of {argv[0]}"


def test_supervisor_children_get_no_key_on_their_command_line(tmp_path: Path) -> None:
    keys = local_keys(tmp_path / "keys.env")
    for child in children(18080, keys):
        for value in keys.values():
            assert value not in " ".join(child.argv), child.name
    venue = next(c for c in children(18080, keys) if c.name == "bybit_sim")
    assert all(keys[k] in venue.extra_env["BYBIT_SIM_ACCOUNTS"] for k in keys)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_production_redis_command_takes_the_password_from_stdin(tmp_path: Path) -> None:
    """The compose command, run natively (the image's entrypoint only drops privileges)."""
    svc = yaml.safe_load((REPO / "docker-compose.production.yml").read_text())["services"]["redis"]
    assert svc["command"][:2] == ["sh", "-c"]
    # the image's entrypoint appends `--protected-mode no` (after our `-`, which must stay last) unless
    # the configuration file sets protected-mode itself
    assert "\nprotected-mode yes\n" in (REPO / "infra" / "redis" / "redis.conf").read_text()
    port, password = _free_port(), "Redis-pw-" + os.urandom(8).hex()
    conf = tmp_path / "redis.conf"
    conf.write_text((REPO / "infra" / "redis" / "redis.conf").read_text()
                    + f"\nport {port}\nbind 127.0.0.1\ndir {tmp_path}\n")
    script = (svc["command"][2].replace("$$", "$").replace("docker-entrypoint.sh ", "")
              .replace("/usr/local/etc/redis/redis.conf", str(conf)))
    proc = subprocess.Popen(["sh", "-c", script], env={"PATH": os.environ["PATH"], "REDIS_PASSWORD": password},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, password="wrong-password", socket_timeout=2).ping()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert "redis-server" in cmdline, "exec must leave redis-server as the signalled process"
        assert password not in cmdline
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_supervisor_runs_shortseller_with_its_own_key_pair_only(tmp_path: Path) -> None:
    keys = local_keys(tmp_path / "keys.env")
    kids = {c.name: c for c in children(18080, keys)}
    bot = kids["shortseller"]
    assert bot.argv[1:] == ["-m", "strategies.shortseller"]
    common = {**keys, "REDIS_PASSWORD": "r", "STRATEGY_DB_PASSWORD": "s", "PATH": "/usr/bin"}
    env = child_env(bot, common)
    assert {k for k in env if k.endswith(("_BYBIT_API_KEY", "_BYBIT_API_SECRET"))} == {
        "SHORTSELLER_BYBIT_API_KEY", "SHORTSELLER_BYBIT_API_SECRET"}
    assert env["SHORTSELLER_BYBIT_API_KEY"] == keys["SHORTSELLER_BYBIT_API_KEY"]
    assert env["STRATEGY_DB_PASSWORD"] == "s" and env["REDIS_PASSWORD"] == "r"
    assert child_env(kids["websocket_listener"], common) == common  # the listener acts for every bot
