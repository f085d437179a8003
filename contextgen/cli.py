"""The `contextgen` command line: one subcommand module per concern under contextgen/commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from contextgen.commands import UsageError, bench, corpus, generate, graph, memory, runs
from contextgen.commands import eval as evaluate
from contextgen.tools.errors import BackendUnavailable


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="contextgen",
        description="Context-aware image generation: research, ground, generate, judge, repeat.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Show debug logs.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for module in (generate, corpus, memory, runs, graph, evaluate, bench):
        module.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the subcommand, turn expected failures into one-line errors."""
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    argv = sys.argv[1:] if argv is None else argv
    undecodable = next((arg for arg in argv if not _is_text(arg)), None)
    if undecodable is not None:
        shown = undecodable.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        print(f"contextgen: error: the argument {shown!r} is not valid UTF-8 text; "
              "retype it or set your terminal to UTF-8", file=sys.stderr)
        return 2
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        return args.run(args) or 0
    except BrokenPipeError:
        return _closed_pipe()
    except (UsageError, ValueError) as error:
        print(f"contextgen: error: {error}", file=sys.stderr)
        return 2
    except BackendUnavailable as error:
        print(f"contextgen: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("contextgen: interrupted.", file=sys.stderr)
        return 130


def _is_text(argument: str) -> bool:
    """False for an argument the OS gave as bytes that are not UTF-8 (surrogate escapes)."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _closed_pipe() -> int:
    """The reader of our output went away (`contextgen runs show ID | head`): stop quietly.

    Standard output is pointed at /dev/null so that flushing it at exit raises nothing more.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
