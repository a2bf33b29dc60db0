"""A private PostgreSQL + PgBouncer + Redis on loopback ports, without Docker.

Used by `make stack-up` (the local platform) and by the tests (their own stack on other ports, so
they can stop and restart each part). Data lives in a git-ignored folder; PostgreSQL and PgBouncer
run as the `postgres` user when the caller is root, because they refuse to run as root.

    python -m infra.localstack up|down|status|env [--dir DIR] [--port-base N]
    python -m infra.localstack stop|start postgres|pgbouncer|redis
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shared.private_file import write_private

REPO = Path(__file__).resolve().parents[1]
PARTS = ("postgres", "pgbouncer", "redis")
APP_ROLES = {  # env var -> login role; the owner is created here, the others by the migrations
    "LISTENER_DB_PASSWORD": "listener_user",
    "STRATEGY_DB_PASSWORD": "strategy_user",
    "RECONCILER_DB_PASSWORD": "reconciler_user",
    "C2_DB_PASSWORD": "c2_user",
}
SECRET_VARS = ("POSTGRES_PASSWORD", "PG_SUPERUSER_PASSWORD", "PGBOUNCER_AUTH_PASSWORD", "REDIS_PASSWORD", *APP_ROLES)
BOOTSTRAP_SQL = REPO / "infra" / "postgres" / "init" / "bootstrap.sql"
DEBIAN_PACKAGES = ("postgresql", "pgbouncer", "redis-server")


class StackError(Exception):
    pass


def _is_root() -> bool:
    return os.geteuid() == 0


def _pg_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def _binaries() -> dict[str, str | None]:
    pg = _pg_bin()
    return {
        "postgresql": str(pg) if pg else None,
        "pgbouncer": shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None),
        "redis-server": shutil.which("redis-server"),
    }


def ensure_packages() -> None:
    missing = [pkg for pkg, path in _binaries().items() if path is None]
    if not missing:
        return
    if not _is_root():
        raise StackError(f"missing Debian packages: {' '.join(missing)}; install them with "
                         f"`sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}`")
    print(f"localstack: installing {' '.join(missing)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *DEBIAN_PACKAGES], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    still = [pkg for pkg, path in _binaries().items() if path is None]
    if still:
        raise StackError(f"apt-get did not provide {' '.join(still)}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class StackConfig:
    root: Path
    pg_port: int
    pgb_port: int
    redis_port: int

    @classmethod
    def for_base(cls, root: Path, port_base: int) -> StackConfig:
        return cls(root.resolve(), port_base, port_base + 1, port_base + 2)


class LocalStack:
    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.root = cfg.root
        self._as_postgres = _is_root()

    # ---- files and users -------------------------------------------------------------
    def _run_as_db_user(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, text=True, capture_output=True, **kw)  # type: ignore[call-overload]

    def _db_user_dir(self, name: str) -> Path:
        """A folder the db user owns. Inside the checkout when that user can reach it, else a
        per-checkout folder under /var/tmp linked from the checkout (e.g. a clone in a 0700 temp dir)."""
        link = self.root / name
        if link.is_symlink() or link.exists():
            return link.resolve()
        if self._as_postgres and not self._reachable_by_postgres(self.root):
            digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
            target = Path("/var/tmp") / f"alpha-stack-{digest}" / name
            target.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
            path = target
        else:
            link.mkdir(parents=True, exist_ok=True)
            path = link
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            for p in (path, *[q for q in path.parents if str(q).startswith("/var/tmp/alpha-stack")]):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            path.chmod(0o700)
        return path

    def _reachable_by_postgres(self, path: Path) -> bool:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)])
        return probe.returncode == 0

    def _write_private(self, path: Path, text: str, owner_postgres: bool = False) -> None:
        owner = None
        if owner_postgres and self._as_postgres:
            pw = pwd.getpwnam("postgres")
            owner = (pw.pw_uid, pw.pw_gid)
        write_private(path, text, owner)

    def secrets(self) -> dict[str, str]:
        """Generated once per stack folder and kept there (mode 600); a variable added later is
        generated alone, so an existing stack keeps its passwords."""
        path = self.root / "secrets.env"
        values: dict[str, str] = {}
        if path.exists():
            values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
            if all(v in values for v in SECRET_VARS):
                return values
        self.root.mkdir(parents=True, exist_ok=True)
        values = {v: values.get(v) or secrets.token_urlsafe(24) for v in SECRET_VARS}
        self._write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))
        return values

    def env(self) -> dict[str, str]:
        s = self.secrets()
        return {
            "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(self.cfg.pg_port),
            "POSTGRES_DB": "trading_db", "POSTGRES_USER": "trading_user",
            "POSTGRES_PASSWORD": s["POSTGRES_PASSWORD"],
            "PGBOUNCER_HOST": "127.0.0.1", "PGBOUNCER_PORT": str(self.cfg.pgb_port),
            **{var: s[var] for var in APP_ROLES},
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.cfg.redis_port),
            "REDIS_PASSWORD": s["REDIS_PASSWORD"],
        }

    def write_env_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_private(path, "".join(f"export {k}='{v}'\n" for k, v in self.env().items()))

    # ---- PostgreSQL ------------------------------------------------------------------
    @property
    def _pg_data(self) -> Path:
        return self._db_user_dir("postgres") / "data"

    def _init_postgres(self) -> bool:
        data = self._pg_data
        if (data / "PG_VERSION").exists():
            return False
        bin_dir = _binaries()["postgresql"]
        pwfile = data.parent / "pwfile"
        self._write_private(pwfile, self.secrets()["PG_SUPERUSER_PASSWORD"] + "\n", owner_postgres=True)
        res = self._run_as_db_user([f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres",
                                    "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                                    "--locale=C.UTF-8"])
        pwfile.unlink()
        if res.returncode != 0:
            raise StackError(f"initdb failed: {res.stderr.strip()[-400:]}")
        conf = (f"\nlisten_addresses = '127.0.0.1'\nport = {self.cfg.pg_port}\n"
                f"unix_socket_directories = '{data.parent}'\nmax_connections = 200\n"
                "shared_buffers = 256MB\nsynchronous_commit = on\nfsync = on\n"
                "timezone = 'UTC'\nlog_timezone = 'UTC'\npassword_encryption = 'scram-sha-256'\n")
        with open(data / "postgresql.conf", "a") as f:
            f.write(conf)
        return True

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        bin_dir = _binaries()["postgresql"]
        return self._run_as_db_user([f"{bin_dir}/pg_ctl", "-D", str(self._pg_data), *args])

    def _postgres_up(self) -> bool:
        return _pid_alive(self._pg_data / "postmaster.pid") is not None and _port_open(self.cfg.pg_port)

    def start_postgres(self) -> None:
        fresh = self._init_postgres()
        if not self._postgres_up():
            if _port_open(self.cfg.pg_port):
                raise StackError(f"port {self.cfg.pg_port} is taken by another process")
            log = self._pg_data.parent / "postgres.log"
            res = self._pg_ctl("-l", str(log), "-w", "-t", "60", "start")
            if res.returncode != 0:
                raise StackError(f"PostgreSQL did not start: {res.stderr.strip()[-300:]} (see {log})")
        if fresh:
            self._bootstrap_database()

    def _superuser_sql(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=self.cfg.pg_port, user="postgres", dbname=dbname,
                             password=self.secrets()["PG_SUPERUSER_PASSWORD"], autocommit=True) as conn:
            conn.execute(statement.encode())

    def bootstrap_command(self) -> tuple[list[str], dict[str, str]]:
        """The production bootstrap (infra/postgres/init/bootstrap.sql) with psql, as the image runs
        it; passwords in the environment only."""
        s = self.secrets()
        argv = [f"{_binaries()['postgresql']}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.cfg.pg_port), "-U", "postgres", "-d", "postgres", "-f", str(BOOTSTRAP_SQL)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": s["PG_SUPERUSER_PASSWORD"],
               "TRADING_OWNER_PASSWORD": s["POSTGRES_PASSWORD"],
               "PGBOUNCER_AUTH_PASSWORD": s["PGBOUNCER_AUTH_PASSWORD"]}
        return argv, env

    def _bootstrap_database(self) -> None:
        argv, env = self.bootstrap_command()
        res = subprocess.run(argv, env=env, text=True, capture_output=True)
        if res.returncode != 0:
            raise StackError(f"bootstrap.sql failed: {res.stderr.strip()[-400:]}")

    def stop_postgres(self) -> None:
        if _pid_alive(self._pg_data / "postmaster.pid") is not None:
            res = self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
            if res.returncode != 0:
                raise StackError(f"PostgreSQL did not stop: {res.stderr.strip()[-300:]}")

    # ---- PgBouncer -------------------------------------------------------------------
    @property
    def _pgb_dir(self) -> Path:
        return self._db_user_dir("pgbouncer")

    def _write_pgbouncer_config(self) -> Path:
        d = self._pgb_dir
        env = self.env()
        users = {"trading_user": env["POSTGRES_PASSWORD"], **{r: env[v] for v, r in APP_ROLES.items()}}
        self._write_private(d / "userlist.txt", "".join(f'"{u}" "{p}"\n' for u, p in users.items()),
                            owner_postgres=True)
        ini = d / "pgbouncer.ini"
        template = (REPO / "infra" / "pgbouncer" / "pgbouncer.ini").read_text()
        text = (template
                .replace("host=postgres port=5432", f"host=127.0.0.1 port={self.cfg.pg_port}")
                .replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
                .replace("listen_port = 6432", f"listen_port = {self.cfg.pgb_port}")
                .replace("/etc/pgbouncer/userlist.txt", str(d / "userlist.txt"))
                .replace(";logfile =", f"logfile = {d / 'pgbouncer.log'}")
                .replace(";pidfile =", f"pidfile = {d / 'pgbouncer.pid'}")
                .replace("unix_socket_dir = /tmp", "unix_socket_dir ="))
        self._write_private(ini, text, owner_postgres=True)
        return ini

    def _pgbouncer_up(self) -> bool:
        return _pid_alive(self._pgb_dir / "pgbouncer.pid") is not None and _port_open(self.cfg.pgb_port)

    def start_pgbouncer(self) -> None:
        if self._pgbouncer_up():
            return
        if _port_open(self.cfg.pgb_port):
            raise StackError(f"port {self.cfg.pgb_port} is taken by another process")
        ini = self._write_pgbouncer_config()
        res = self._run_as_db_user([str(_binaries()["pgbouncer"]), "-d", str(ini)])
        if res.returncode != 0:
            raise StackError(f"PgBouncer did not start: {res.stderr.strip()[-300:]}")
        self._wait(lambda: _port_open(self.cfg.pgb_port), "PgBouncer")

    def stop_pgbouncer(self) -> None:
        self._stop_pidfile(self._pgb_dir / "pgbouncer.pid", signal.SIGTERM, "PgBouncer")

    # ---- Redis -----------------------------------------------------------------------
    @property
    def _redis_dir(self) -> Path:
        d = self.root / "redis"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _redis_up(self) -> bool:
        return _pid_alive(self._redis_dir / "redis.pid") is not None and _port_open(self.cfg.redis_port)

    def start_redis(self) -> None:
        if self._redis_up():
            return
        if _port_open(self.cfg.redis_port):
            raise StackError(f"port {self.cfg.redis_port} is taken by another process")
        d = self._redis_dir
        template = (REPO / "infra" / "redis" / "redis.conf").read_text()
        conf = template + (f"\nport {self.cfg.redis_port}\nbind 127.0.0.1\ndir {d}\ndaemonize yes\n"
                           f"pidfile {d / 'redis.pid'}\nlogfile {d / 'redis.log'}\n"
                           f"requirepass {self.secrets()['REDIS_PASSWORD']}\n")
        self._write_private(d / "redis.conf", conf)
        res = subprocess.run([str(_binaries()["redis-server"]), str(d / "redis.conf")],
                             text=True, capture_output=True)
        if res.returncode != 0:
            raise StackError(f"Redis did not start: {res.stderr.strip()[-300:]}")
        self._wait(self._redis_up, "Redis")

    def stop_redis(self) -> None:
        pidfile = self._redis_dir / "redis.pid"
        if _pid_alive(pidfile) is None:
            return
        import redis
        try:
            redis.Redis(port=self.cfg.redis_port, password=self.secrets()["REDIS_PASSWORD"]).shutdown()
        except redis.exceptions.ConnectionError:
            pass  # shutdown closes the connection under us
        self._wait(lambda: _pid_alive(pidfile) is None, "Redis to stop")

    # ---- whole stack -----------------------------------------------------------------
    def _stop_pidfile(self, pidfile: Path, sig: signal.Signals, what: str) -> None:
        pid = _pid_alive(pidfile)
        if pid is None:
            return
        os.kill(pid, sig)
        self._wait(lambda: _pid_alive(pidfile) is None, f"{what} to stop")

    @staticmethod
    def _wait(cond: object, what: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise StackError(f"timed out waiting for {what}")

    def start(self, part: str) -> None:
        {"postgres": self.start_postgres, "pgbouncer": self.start_pgbouncer, "redis": self.start_redis}[part]()

    def stop(self, part: str) -> None:
        {"postgres": self.stop_postgres, "pgbouncer": self.stop_pgbouncer, "redis": self.stop_redis}[part]()

    def up(self) -> None:
        ensure_packages()
        self.root.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            self.start(part)
        self.migrate()

    def down(self) -> None:
        for part in reversed(PARTS):
            self.stop(part)

    def status(self) -> dict[str, bool]:
        if not self.root.exists():
            return {part: False for part in PARTS}
        return {"postgres": self._postgres_up(), "pgbouncer": self._pgbouncer_up(), "redis": self._redis_up()}

    def migrate(self) -> str:
        res = subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=REPO, text=True,
                             capture_output=True, env={**os.environ, **self.env()})
        if res.returncode != 0:
            raise StackError(f"migrations failed: {(res.stderr or res.stdout).strip()[-500:]}")
        return res.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infra.localstack", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["up", "down", "status", "env", "migrate", "stop", "start"])
    ap.add_argument("part", nargs="?", choices=PARTS)
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("ALPHA_STACK_DIR", REPO / ".run" / "stack")))
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("ALPHA_STACK_PORT_BASE", "15432")))
    ap.add_argument("--env-file", type=Path, default=None,
                    help="where `up` writes the connection settings (default: .run/stack.env for the default stack)")
    args = ap.parse_args(argv)
    if args.command in ("stop", "start") and not args.part:
        ap.error(f"{args.command} needs a part: {', '.join(PARTS)}")
    if not 1024 <= args.port_base <= 65530:
        ap.error("--port-base must be between 1024 and 65530")
    stack = LocalStack(StackConfig.for_base(args.dir, args.port_base))
    env_file = args.env_file or (args.dir.parent / f"{args.dir.name}.env")
    try:
        if args.command == "up":
            stack.up()
            stack.write_env_file(env_file)
            print(f"stack up: postgres :{stack.cfg.pg_port}, pgbouncer :{stack.cfg.pgb_port}, "
                  f"redis :{stack.cfg.redis_port}; settings in {env_file}")
        elif args.command == "down":
            stack.down()
            print("stack down")
        elif args.command == "status":
            st = stack.status()
            for part, up in st.items():
                port = {"postgres": stack.cfg.pg_port, "pgbouncer": stack.cfg.pgb_port, "redis": stack.cfg.redis_port}[part]
                print(f"{part:10} {'up' if up else 'down':5} 127.0.0.1:{port}")
            return 0 if all(st.values()) else 3
        elif args.command == "env":
            for k, v in stack.env().items():
                print(f"export {k}='{v}'")
        elif args.command == "migrate":
            print(stack.migrate())
        else:
            getattr(stack, args.command)(args.part)
            print(f"{args.part} {args.command}ed" if args.command == "start" else f"{args.part} stopped")
    except StackError as exc:
        print(f"localstack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
