"""Durable runs: the SQLite checkpointer the CLI uses, with the state's types allow-listed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from contextgen.graphs import state
from contextgen.tools.errors import BackendUnavailable

STATE_TYPES = [
    (state.__name__, name)
    for name in (
        "Intent",
        "Evidence",
        "Memory",
        "Fact",
        "PromptPackage",
        "ImageArtifact",
        "Verdict",
    )
]


def open_checkpointer(data_dir: str) -> SqliteSaver:
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
    return SqliteSaver(connection, serde=JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES))
