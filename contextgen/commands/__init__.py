"""Subcommands of the `contextgen` CLI, one module per concern; each has `register(subparsers)`."""

import tempfile
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user: printed as one line with what to do, exit code 2."""


def writable_folder(path: str | Path, flag: str) -> Path:
    """Create `path` if needed and check that files can be written there, before any work."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or error
        message = f"{flag} {path} cannot hold files ({reason}); choose another folder"
        raise UsageError(message) from error
    return folder
