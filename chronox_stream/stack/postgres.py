"""The PostgreSQL of the stack: reuse one that answers, else run our own cluster.

Our cluster lives in ``<stack_dir>/postgres/data``, is made with the Debian
binaries (installed with apt when absent), listens on 127.0.0.1 at the DSN's
port, keeps its socket in ``<stack_dir>/postgres/run``, and runs as the
``postgres`` OS user when we are root (PostgreSQL refuses to run as root).
The DSN's role and database are created in it, so the role may create
schemas. ``down`` stops it with ``pg_ctl stop -m fast`` on that data folder
only. A server already on the port is reused; if it rejects the DSN's role
and runs on this machine, the role is created there as its superuser.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncpg

from chronox_stream.stack import apt, procs
from chronox_stream.stack.endpoints import (
    Credentials,
    Endpoint,
    dsn_credentials,
    mask,
    url_endpoint,
)
from chronox_stream.stack.model import StackError
from chronox_stream.stack.service import Say, Service

OS_USER = "postgres"
_DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` folder, else the one of ``initdb`` on PATH."""
    versions = [p for p in _DEBIAN_ROOT.glob("*/bin/initdb") if p.parts[-3].isdigit()]
    if versions:
        return max(versions, key=lambda p: int(p.parts[-3])).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def as_owner(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` OS user when we are root, else as ourselves."""
    return ["runuser", "-u", OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def literal(value: str | None) -> str:
    """A SQL string literal (``NULL`` for ``None``)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def role_and_database_sql(creds: Credentials) -> str:
    """psql script creating the DSN's role and database when missing (idempotent).

    The role owns a database it creates; on an existing database it is granted
    CONNECT and CREATE, which is what creating schemas needs.
    """
    user, password, db = literal(creds.user), literal(creds.password), literal(creds.database)
    return (
        f"SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', {user}, {password}) "
        f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {user})\\gexec\n"
        f"SELECT format('CREATE DATABASE %I OWNER %I', {db}, {user}) "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db})\\gexec\n"
        f"SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', {db}, {user})\\gexec\n"
    )


def server_config(*, port: int, socket_dir: Path) -> str:
    """Settings of our cluster, included from its postgresql.conf and rewritten on each start."""
    socket = str(socket_dir).replace("'", "''")
    return (
        "# Written by `chronox stack up` on every start; edits are overwritten.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        f"unix_socket_directories = '{socket}'\n"
    )


async def sql_error(dsn: str) -> str | None:
    """None when ``SELECT 1`` succeeds with the DSN, else why not (secrets masked)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return mask(f"{type(exc).__name__}: {exc}", [dsn_credentials(dsn).password])
    return None


class Postgres(Service):
    name = "postgres"
    ready_timeout_s = 60.0

    @property
    def dsn(self) -> str:
        return self.settings.postgres_dsn.get_secret_value()

    @property
    def endpoint(self) -> Endpoint:
        return url_endpoint(self.dsn, 5432)

    @property
    def data_dir(self) -> Path:
        return self.layout.postgres / "data"

    @property
    def socket_dir(self) -> Path:
        return self.layout.postgres / "run"

    async def answers(self) -> bool:
        return await sql_error(self.dsn) is None

    def our_pid(self) -> int | None:
        """Our pid file's postmaster, else the live postmaster of our data folder (re-recorded).

        The second case covers an ``up`` interrupted between starting the
        server and writing the pid file: the server is still ours to reuse and stop.
        """
        pid = super().our_pid()
        if pid is None:
            pid = procs.read_pid(self.data_dir / "postmaster.pid")
            if pid is None or not procs.alive(pid) or not procs.works_in(pid, self.data_dir):
                return None
            procs.write_pid(self.pid_file, pid)
        return pid

    async def install(self, say: Say) -> None:
        if find_bindir() is None:
            say("postgres: installing Debian's postgresql package")
            await asyncio.to_thread(
                apt.install, "postgresql", log=self.layout.log("apt"), why="PostgreSQL"
            )

    async def start(self, say: Say) -> int:
        return await asyncio.to_thread(self._start, say)

    async def settle(self) -> None:
        if not await self.answers():
            await asyncio.to_thread(self._create_role, self.socket_dir)

    async def adopt(self, say: Say) -> None:
        """A local server rejects the DSN: create its role there as the superuser, or fail."""
        reason = await sql_error(self.dsn)
        creds = dsn_credentials(self.dsn)
        rejected = f"postgres: the server on {self.endpoint} rejects user {creds.user!r} ({reason})"
        if not self.endpoint.local or find_bindir() is None:
            raise StackError(f"{rejected}; create the role there or change CHRONOX_POSTGRES_DSN")
        say(
            f"postgres: creating role {creds.user!r} and database {creds.database!r} "
            f"in the server on {self.endpoint}"
        )
        try:
            await asyncio.to_thread(self._create_role, None)
        except StackError as exc:
            raise StackError(f"{rejected}, and as its superuser: {exc}") from None
        reason = await sql_error(self.dsn)
        if reason is not None:
            raise StackError(
                f"{rejected}, even after creating the role: does it exist with another password?"
            )

    def stop(self, pid: int) -> None:
        """``pg_ctl stop -m fast`` on our data folder; signals only if that fails."""
        bindir = find_bindir()
        if bindir is not None:
            self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                    "-s",
                    "stop",
                ],
                check=False,
            )
        if procs.alive(pid):
            procs.terminate(pid, grace_s=self.stop_grace_s)

    def _start(self, say: Say) -> int:
        bindir = find_bindir()
        if bindir is None:
            raise StackError("postgres: no PostgreSQL binaries found (initdb)")
        self._prepare_folders()
        if not (self.data_dir / "PG_VERSION").exists():
            say(f"postgres: creating a cluster in {self.data_dir}")
            self._initdb(bindir)
        config = self.data_dir / "chronox.conf"
        config.write_text(server_config(port=self.endpoint.port, socket_dir=self.socket_dir))
        self._own(config)
        self._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-s",
                "start",
            ]
        )
        pid = procs.read_pid(self.data_dir / "postmaster.pid")
        if pid is None:
            raise StackError(f"postgres: started but wrote no postmaster.pid; see {self.log}")
        return pid

    def _prepare_folders(self) -> None:
        """Folders and log owned by the server's OS user, which must be able to reach them."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        for path in (self.layout.postgres, self.socket_dir, self.log):
            self._own(path)
        if (
            os.geteuid() == 0
            and subprocess.run(
                as_owner(["test", "-w", str(self.layout.postgres)]), cwd="/"
            ).returncode
        ):
            raise StackError(
                f"postgres: the {OS_USER!r} OS user cannot reach {self.layout.postgres}; "
                "choose a CHRONOX_STACK_DIR whose parent folders others may enter"
            )

    def _initdb(self, bindir: Path) -> None:
        """Create the cluster in a scratch folder and rename it, so a failed initdb leaves none."""
        scratch = self.layout.postgres / "data.new"
        shutil.rmtree(scratch, ignore_errors=True)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(scratch),
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ]
        )
        with (scratch / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'chronox.conf'\n")
        scratch.rename(self.data_dir)

    def _create_role(self, socket_dir: Path | None) -> None:
        """Create the DSN's role and database as the superuser, over the local socket."""
        bindir = find_bindir()
        if bindir is None:
            raise StackError("postgres: no PostgreSQL binaries found (psql)")
        creds = dsn_credentials(self.dsn)
        argv = [
            str(bindir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-p",
            str(self.endpoint.port),
            "-d",
            "postgres",
            "-f",
            "-",
        ]
        if socket_dir is not None:
            argv += ["-h", str(socket_dir)]
        done = subprocess.run(
            as_owner(argv),
            input=role_and_database_sql(creds),
            cwd="/",
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise StackError(
                f"creating role {creds.user!r} and database {creds.database!r} "
                f"failed: {mask(done.stderr.strip(), [creds.password])}"
            )

    def _run(self, argv: list[str], *, check: bool = True) -> None:
        """Run a PostgreSQL tool as the server's OS user, output appended to our log."""
        with self.log.open("ab") as out:
            done = subprocess.run(
                as_owner(argv),
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if check and done.returncode != 0:
            raise StackError(f"postgres: `{Path(argv[0]).name}` failed; see {self.log}")

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, OS_USER, OS_USER)
