"""Production PgBouncer authentication, run natively: it holds only its own login (pgbouncer_auth) and
looks every other password up with the compose file's AUTH_QUERY through `pgbouncer.get_auth()`
(created by infra/postgres/init/bootstrap.sql, which the test stack ran too)."""
from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
import yaml

from infra.localstack import _binaries
from tests.support.stack import REPO, TestStack

pytestmark = pytest.mark.integration
PORT = int(os.environ.get("ALPHA_TEST_PORT_BASE", "25400")) + 8


def _open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def bouncer(stack: TestStack) -> Iterator[TestStack]:
    raw = yaml.safe_load((REPO / "docker-compose.production.yml").read_text())["services"]["pgbouncer"]["environment"]
    env = {k: str(v).replace("$$", "$") for k, v in raw.items()}  # compose's escaping of a literal $
    local = stack.local
    d = local._db_user_dir("pgbouncer-authq")
    pidfile = d / "pgbouncer.pid"
    local._write_private(d / "userlist.txt", f'"{env["AUTH_USER"]}" "{local.secrets()["PGBOUNCER_AUTH_PASSWORD"]}"\n',
                         owner_postgres=True)
    ini = (f"[databases]\ntrading_db = host=127.0.0.1 port={local.cfg.pg_port} dbname=trading_db\n"
           f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {PORT}\nunix_socket_dir =\n"
           f"auth_type = {env['AUTH_TYPE']}\nauth_file = {d / 'userlist.txt'}\n"
           f"auth_user = {env['AUTH_USER']}\nauth_query = {env['AUTH_QUERY']}\n"
           f"stats_users = {env['STATS_USERS']}\npool_mode = {env['POOL_MODE']}\n"
           f"ignore_startup_parameters = {env['IGNORE_STARTUP_PARAMETERS']}\n"
           f"logfile = {d / 'pgbouncer.log'}\npidfile = {pidfile}\n")
    local._write_private(d / "pgbouncer.ini", ini, owner_postgres=True)
    assert env["DB_USER"] == env["AUTH_USER"] == "pgbouncer_auth"
    res = local._run_as_db_user([str(_binaries()["pgbouncer"]), "-d", str(d / "pgbouncer.ini")])
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 20
    while not _open(PORT):
        assert time.monotonic() < deadline, "pgbouncer did not start"
        time.sleep(0.05)
    yield stack
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _open(PORT) and time.monotonic() < deadline:
        time.sleep(0.05)


def _connect(user: str, password: str, dbname: str = "trading_db") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=PORT, dbname=dbname, user=user, password=password,
                           prepare_threshold=None, autocommit=True, connect_timeout=5)


def test_roles_log_in_through_the_lookup(bouncer: TestStack) -> None:
    env = bouncer.env
    for user, var in (("listener_user", "LISTENER_DB_PASSWORD"), ("c2_user", "C2_DB_PASSWORD"),
                      ("trading_user", "POSTGRES_PASSWORD")):
        with _connect(user, env[var]) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError):
        _connect("listener_user", "not-the-password").close()


def test_superusers_are_never_looked_up(bouncer: TestStack) -> None:
    with pytest.raises(psycopg.OperationalError):
        _connect("postgres", bouncer.local.secrets()["PG_SUPERUSER_PASSWORD"]).close()


def test_only_pgbouncer_auth_may_read_password_hashes(bouncer: TestStack) -> None:
    with psycopg.connect(bouncer.db.dsn("strategy", direct=True), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM pgbouncer.get_auth('listener_user')")


def test_stats_console_with_its_own_login(bouncer: TestStack) -> None:
    with _connect("pgbouncer_auth", bouncer.local.secrets()["PGBOUNCER_AUTH_PASSWORD"], "pgbouncer") as conn:
        pools = conn.execute("SHOW POOLS").fetchall()
    assert any(row[0] == "trading_db" for row in pools)
