"""`contextgen memory list|forget|prefer`: look at and edit what the agent remembers."""

from __future__ import annotations

import argparse

from contextgen.commands import UsageError
from contextgen.graphs.context import Context


def register(subcommands) -> None:
    parser = subcommands.add_parser("memory", help="List, add or forget memories.")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="List a user's memories.")
    listing.add_argument("--user", help="Whose memories (default: CONTEXTGEN_USER or 'default').")
    listing.set_defaults(run=list_memories)
    prefer = actions.add_parser("prefer", help='Store a lasting preference ("always watercolor").')
    prefer.add_argument("text")
    prefer.add_argument("--user")
    prefer.set_defaults(run=add_preference)
    forget = actions.add_parser("forget", help="Forget one memory by id, or all with --all.")
    forget.add_argument("memory_id", nargs="?")
    forget.add_argument("--all", action="store_true", help="Forget all of the user's memories.")
    forget.add_argument("--user")
    forget.set_defaults(run=forget_memories)


def _store_and_user(args: argparse.Namespace):
    from contextgen.tools.backends import backends_for

    context = Context(**({"user_id": args.user} if args.user else {}))
    return backends_for(context).memory, context.user_id


def list_memories(args: argparse.Namespace) -> int:
    store, user_id = _store_and_user(args)
    memories = store.list(user_id)
    if not memories:
        print(f"No memories for user {user_id!r}.")
    for memory in memories:
        print(f"{memory.id}  [{memory.kind}]  {memory.text.splitlines()[0][:100]}")
    return 0


def add_preference(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise UsageError("the preference is empty")
    store, user_id = _store_and_user(args)
    print(f"Remembered {store.remember_preference(user_id, args.text)} for {user_id!r}.")
    return 0


def forget_memories(args: argparse.Namespace) -> int:
    if bool(args.memory_id) == args.all:
        raise UsageError("give one memory id (see contextgen memory list), or --all")
    store, user_id = _store_and_user(args)
    removed = store.forget(user_id, None if args.all else args.memory_id)
    if not removed and args.memory_id:
        raise UsageError(f"no memory {args.memory_id!r} for user {user_id!r}")
    print(f"Forgot {removed} memor{'y' if removed == 1 else 'ies'} of {user_id!r}.")
    return 0
