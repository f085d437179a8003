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
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args) or 0
    except (UsageError, ValueError) as error:
        print(f"contextgen: error: {error}", file=sys.stderr)
        return 2
    except BackendUnavailable as error:
        print(f"contextgen: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("contextgen: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
