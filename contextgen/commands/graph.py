"""`contextgen graph`: print the image agent as Mermaid (the README's diagram comes from here)."""

from __future__ import annotations

import argparse


def register(subcommands) -> None:
    parser = subcommands.add_parser("graph", help="Print the agent's graph as Mermaid.")
    parser.set_defaults(run=print_graph)


def mermaid() -> str:
    """The compiled graph drawn as a Mermaid flowchart."""
    from contextgen.graphs.image_agent import graph

    return graph.get_graph().draw_mermaid().strip()


def print_graph(args: argparse.Namespace) -> int:
    print(mermaid())
    return 0
