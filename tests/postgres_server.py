"""A real PostgreSQL for tests: Debian's binaries, a throwaway cluster in a temporary folder,
listening on a free loopback port only (no Unix socket), trust authentication.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user that
Debian's package creates (or `nobody`) and its programs run as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.real_backends import free_port

DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"  # the database role, not the system user
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def postgres_bin_dir() -> Path | None:
    """The newest of Debian's PostgreSQL bin folders, else the one on PATH, else None."""
    debian = sorted(Path("/").glob(DEBIAN_BIN_DIRS.lstrip("/")),
                    key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    if debian:
        return debian[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _system_user() -> str | None:
    """Whom the server runs as: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root with neither a postgres nor a nobody user to run PostgreSQL")


@dataclass
class PostgresServer:
    """A running throwaway cluster: `url` for its `postgres` database, `create_database`."""

    bin_dir: Path
    folder: Path
    port: int
    user: str | None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def start(self) -> None:
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(self.folder / "server.log"))

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast", "-w")

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([str(self.bin_dir / program), *args], user=self.user,
                              cwd=self.folder, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr or done.stdout}\n{tail}")


def start_postgres(settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb a cluster in a new temporary folder and start it; skips the test when PostgreSQL
    is not installed. `settings` go into postgresql.conf (default: durability off, for speed)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("PostgreSQL is not installed: `make test` installs it (apt-get install "
                    "postgresql)")
    user = _system_user()
    folder = Path(tempfile.mkdtemp(prefix="contextgen-postgres-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, folder, free_port(), user)
    server._run("initdb", "-D", str(server.data_dir), "-U", SUPERUSER, "--auth=trust",
                "-E", "UTF8", "--no-locale", "--no-sync")
    conf = {"listen_addresses": "'127.0.0.1'", "port": str(server.port),
            "unix_socket_directories": "''", "max_connections": "200",
            **(FAST_SETTINGS if settings is None else settings)}
    with (server.data_dir / "postgresql.conf").open("a") as file:
        file.writelines(f"{name} = {value}\n" for name, value in conf.items())
    try:
        server.start()
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


@contextmanager
def running_postgres(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """A started cluster for the `with` block; stopped and deleted afterwards."""
    server = start_postgres(settings)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)
