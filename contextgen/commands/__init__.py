"""Subcommands of the `contextgen` CLI, one module per concern; each has `register(subparsers)`."""


class UsageError(Exception):
    """Bad input from the user: printed as one line with what to do, exit code 2."""
