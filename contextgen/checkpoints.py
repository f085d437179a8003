"""Durable runs: the checkpointer the CLI uses, with the state's types allow-listed.

SQLite in the data folder by default; PostgreSQL (`langgraph-checkpoint-postgres`) when
`CONTEXTGEN_DATABASE_URL` names a server, so that many processes and machines share one run
history. Both are read through the checkpointer's own API, never through their SQL.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from contextgen.graphs import state
from contextgen.tools.errors import BackendUnavailable

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres import PostgresSaver

STATE_TYPES = [
    (state.__name__, name)
    for name in (
        "Intent",
        "Evidence",
        "Memory",
        "Fact",
        "PromptPackage",
        "ImageArtifact",
        "ReferenceImageRecord",
        "Verdict",
    )
]
POSTGRES_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10
SETUP_LOCK_ID = 0x636F6E74  # one `setup()` at a time when several processes start together
SETUP_WAIT_S = 60
# Commits return before PostgreSQL flushes them to disk (this connection only): a killed
# contextgen loses nothing, a crashed database server at most its last fraction of a second of
# checkpoints (a step is redone). It halves the per-run cost; `?options=...` in the URL wins.
SESSION_OPTIONS = "-c synchronous_commit=off"


def _serializer() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


def open_checkpointer(data_dir: str, database_url: str = "") -> BaseCheckpointSaver:
    """The run store: PostgreSQL at `database_url` when given, else SQLite in `data_dir`.

    A store that cannot be opened raises BackendUnavailable with what to check."""
    if database_url:
        return open_postgres_checkpointer(database_url)
    return open_sqlite_checkpointer(data_dir)


def open_sqlite_checkpointer(data_dir: str) -> SqliteSaver:
    """A SqliteSaver on `data_dir/checkpoints.sqlite` (created if missing).

    A file that is not a SQLite database raises BackendUnavailable; it is never replaced."""
    path = Path(data_dir) / "checkpoints.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as error:
        connection.close()
        raise BackendUnavailable(
            f"{path} is not a readable checkpoint database ({error}). Move it aside to start "
            "a new run history; run folders (images, run.json) do not depend on it."
        ) from error
    return SqliteSaver(connection, serde=_serializer())


def open_postgres_checkpointer(database_url: str) -> PostgresSaver:
    """A PostgresSaver on one autocommit connection to `database_url` (asynchronous commit, see
    SESSION_OPTIONS), its tables set up.

    The saver serialises its queries behind a lock, so one connection serves every thread of
    the process. An unusable URL or an unreachable server raises BackendUnavailable."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    shown, password = redacted(database_url), urlsplit(database_url).password
    if urlsplit(database_url).scheme not in POSTGRES_SCHEMES:
        raise BackendUnavailable(
            f"CONTEXTGEN_DATABASE_URL={shown!r} is not a PostgreSQL URL: use "
            "postgresql://USER@HOST:PORT/DATABASE, or unset it for SQLite in the data folder."
        )
    session = {} if "options=" in urlsplit(database_url).query else {"options": SESSION_OPTIONS}
    try:
        connection = psycopg.Connection.connect(
            database_url, autocommit=True, prepare_threshold=0, row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_S, **session,
        )
    except psycopg.Error as error:
        raise _unusable(shown, error, password) from None
    saver = PostgresSaver(connection, serde=_serializer())
    try:
        _set_up_once(saver)
    except psycopg.Error as error:
        connection.close()
        raise _unusable(shown, error, password) from None
    except BaseException:
        connection.close()
        raise
    return saver


def _unusable(shown_url: str, error: Exception, password: str | None) -> BackendUnavailable:
    reason = " ".join(str(error).split()) or type(error).__name__
    if password:
        reason = reason.replace(password, "***")
    return BackendUnavailable(
        f"cannot use the checkpoint database {shown_url} ({reason}). Check "
        "CONTEXTGEN_DATABASE_URL (host, port, user, database; the password in the URL, "
        "PGPASSWORD or ~/.pgpass) and that PostgreSQL is running and reachable."
    )


def _set_up_once(saver: PostgresSaver) -> None:
    """`saver.setup()` (tables and migrations) while holding an advisory lock, so processes
    starting together do not race. The lock is polled: a session blocked on it would hold a
    snapshot that the migrations' CREATE INDEX CONCURRENTLY waits for, a deadlock."""
    connection = saver.conn
    deadline = time.monotonic() + SETUP_WAIT_S
    while not connection.execute(
        "SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_ID,)
    ).fetchone()["locked"]:
        if time.monotonic() > deadline:
            raise BackendUnavailable(
                f"another process has held the checkpoint tables' setup lock for {SETUP_WAIT_S} s;"
                " check for a stuck contextgen process on this database"
            )
        time.sleep(0.05)
    try:
        saver.setup()
    finally:
        connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_ID,))


def redacted(database_url: str) -> str:
    """The URL with its password replaced by ***, fit to print."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def recent_threads(saver: BaseCheckpointSaver, limit: int) -> list[str]:
    """Thread ids of the `limit` most recently started runs, newest first.

    A run's first checkpoint is its input (`source` "input", `step` -1): one per thread, found
    through the checkpointer's metadata filter on any backend."""
    firsts = list(saver.list(None, filter={"source": "input", "step": -1}, limit=limit))
    return [
        first.config["configurable"]["thread_id"]
        for first in firsts
        if not first.config["configurable"].get("checkpoint_ns")
    ]
