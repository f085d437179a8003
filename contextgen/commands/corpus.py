"""`contextgen corpus add DIR|seed|status`: build the local search corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from contextgen.commands import UsageError
from contextgen.graphs.context import Context


def register(subcommands) -> None:
    parser = subcommands.add_parser("corpus", help="Build the offline search corpus.")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="Index a folder of .txt/.md documents.")
    add.add_argument("folder")
    add.set_defaults(run=add_folder)
    seed = actions.add_parser("seed", help="Index the offline Wikipedia summaries (once).")
    seed.set_defaults(run=seed_wikipedia)
    status = actions.add_parser("status", help="How many passages are indexed.")
    status.set_defaults(run=show_status)


def _corpus():
    from contextgen.tools.backends import backends_for

    return backends_for(Context()).local_corpus


def add_folder(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of .txt/.md documents")
    corpus = _corpus()
    try:
        added, removed = corpus.mirror_folder(folder)
    except ValueError as error:
        raise UsageError(f"{error}; put .txt or .md files in {folder}") from error
    gone = f", removed {removed} no longer in it" if removed else ""
    print(f"Indexed {added} new passage(s) from {folder}{gone}; the corpus has {corpus.count()}.")
    return 0


def seed_wikipedia(args: argparse.Namespace) -> int:
    from contextgen.tools.search.wiki_summaries import ensure_wiki_corpus

    corpus = _corpus()
    added = ensure_wiki_corpus(corpus)
    print(f"Indexed {added} Wikipedia summaries; the corpus has {corpus.count()} passages.")
    return 0


def show_status(args: argparse.Namespace) -> int:
    corpus = _corpus()
    print(f"{corpus.count()} passages in {corpus.path}")
    return 0
