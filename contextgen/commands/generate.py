"""`contextgen generate "REQUEST"`: run the agent with live progress and write the run folder."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from langgraph.types import Command

from contextgen.checkpoints import open_checkpointer
from contextgen.commands import UsageError, writable_folder
from contextgen.graphs.context import Context
from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import MAX_REQUEST_CHARS
from contextgen.nodes.request_text import RequestError, read_request
from contextgen.progress_display import ProgressDisplay
from contextgen.run_record import RUN_FILE, RUN_FOLDER_KEY, RunSummary, write_run_files
from contextgen.runner import RunOutcome, run_agent
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import StructuredOutputError


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "generate", help="Turn a request into a grounded prompt and an image."
    )
    parser.add_argument("request", nargs="?", help="What to draw, in your own words.")
    parser.add_argument("--user", help="Whose memories and preferences to use.")
    parser.add_argument("--out", help="Run folder (default: outputs/<thread id>).")
    parser.add_argument("--max-rounds", type=int, help="Generate-and-judge rounds at most.")
    parser.add_argument(
        "--interactive", action="store_true", help="Ask when the request is ambiguous."
    )
    parser.add_argument(
        "--reference", action="append", default=[], help="Reference image path/URL."
    )
    parser.add_argument("--thread", help="Resume or continue this run (its thread id).")
    parser.add_argument("--answer", help="Answer to the agent's pending question (with --thread).")
    parser.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Run one request (or resume a thread) and print the grounded prompt and where files are."""
    if not args.thread and not (args.request and args.request.strip()):
        raise UsageError('give a request, e.g. contextgen generate "a red fox in snow"')
    if args.request and len(args.request) > MAX_REQUEST_CHARS:
        raise UsageError(
            f"the request is {len(args.request):,} characters; at most {MAX_REQUEST_CHARS:,} are "
            "read: shorten it, and put background documents in the corpus (contextgen corpus add)"
        )
    if args.request:
        try:
            read_request(args.request)  # what the graph would refuse: symbols with no names
        except RequestError as error:
            raise UsageError(str(error)) from None
    if args.answer and not args.thread:
        raise UsageError("--answer needs --thread ID: the run whose question you answer")
    for reference in args.reference:
        check_reference_image(reference)
    thread_id = args.thread or uuid.uuid4().hex[:12]
    overrides: dict = {}
    if args.user:
        overrides["user_id"] = args.user
    if args.max_rounds is not None:
        overrides["max_rounds"] = args.max_rounds
    if args.interactive:
        overrides["interactive"] = True
    context = Context(**overrides)
    agent = build_graph(checkpointer=open_checkpointer(context.data_dir, context.database_url))
    config: dict = {"configurable": {"thread_id": thread_id}}
    graph_input = first_input(agent, config, args)
    out_dir = Path(args.out or run_folder(agent, config) or Path(context.output_dir) / thread_id)
    out_dir = out_dir.expanduser()
    writable_folder(out_dir, "--out" if args.out else "the run folder (CONTEXTGEN_OUTPUT_DIR)")
    context = Context(**overrides, output_dir=str(out_dir))
    config["metadata"] = {RUN_FOLDER_KEY: str(out_dir)}
    # A run resumed without its record (killed before it wrote one) still records every node.
    ran_before = checkpointed_path(agent, config) if args.thread else []
    display = ProgressDisplay()
    print(f"run {thread_id} -> {out_dir}", file=sys.stderr)
    while True:
        outcome = RunOutcome(state={})
        try:
            run_agent(agent, graph_input, context=context, config=config, on_progress=display,
                      outcome=outcome)
        except (BackendUnavailable, StructuredOutputError, KeyboardInterrupt) as error:
            record(out_dir, outcome, context, thread_id, ran_before)  # what finished
            interrupted = isinstance(error, KeyboardInterrupt)
            print("contextgen: interrupted." if interrupted else f"contextgen: error: {error}",
                  file=sys.stderr)
            print(
                f"What finished is in {out_dir}; resume with: contextgen generate --thread "
                f"{thread_id}",
                file=sys.stderr,
            )
            return 130 if interrupted else 1
        summary = record(out_dir, outcome, context, thread_id, ran_before)
        ran_before = []  # recorded now: later invocations merge with run.json
        if not outcome.interrupt:
            break
        answer = ask(outcome.interrupt["question"])
        if answer is None:
            print(
                f"The agent asks: {outcome.interrupt['question']}\nAnswer with: contextgen "
                f'generate --thread {thread_id} --answer "..."',
                file=sys.stderr,
            )
            return 0
        graph_input = Command(resume=answer)
    print(summary.text(out_dir))
    return 0


def record(
    out_dir: Path, outcome: RunOutcome, context: Context, thread_id: str, ran_before: list[str]
) -> RunSummary:
    """run.json and report.html for this invocation, merged with earlier ones of the thread:
    from their run.json, else from `ran_before` (the nodes its checkpoints say ran)."""
    summary = RunSummary.from_outcome(outcome, context, thread_id)
    if ran_before and not (out_dir / RUN_FILE).exists():
        summary = summary.merged_with({"thread_id": thread_id, "path": ran_before})
    return write_run_files(out_dir, summary)


def checkpointed_path(agent, config: dict) -> list[str]:
    """The nodes a thread has run, oldest first, read from its checkpoints: each checkpoint
    names the nodes that ran after it (the newest names those still to run)."""
    history = list(agent.get_state_history(config))[::-1]
    return [node for snapshot in history[:-1] for node in snapshot.next if node != "__start__"]


def run_folder(agent, config: dict) -> str | None:
    """The folder an earlier invocation of this thread wrote to (kept in checkpoint metadata),
    so a resumed run continues its own record."""
    snapshot = agent.get_state(config)
    return (snapshot.metadata or {}).get(RUN_FOLDER_KEY) if snapshot.values else None


def check_reference_image(reference: str) -> None:
    """A reference must be an http(s) URL or a readable image file; UsageError otherwise."""
    if reference.startswith(("http://", "https://")):
        return
    from PIL import Image, UnidentifiedImageError

    path = Path(reference).expanduser()
    if not path.is_file():
        raise UsageError(f"reference image {reference} does not exist; give a file or a URL")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError) as error:
        message = f"reference image {reference} is not a readable image ({error})"
        raise UsageError(message) from error


def first_input(agent, config: dict, args: argparse.Namespace):
    """New request, a resume answer, or None to continue a thread where it stopped."""
    if not args.thread:
        graph_input = {"request": args.request.strip(), "reference_images": args.reference}
        if args.user:
            graph_input["user_id"] = args.user
        return graph_input
    snapshot = agent.get_state(config)
    if not snapshot.values:
        raise UsageError(
            f"no run with thread id {args.thread!r}; list them with contextgen runs list"
        )
    if snapshot.interrupts:
        if not args.answer:
            raise UsageError(
                f"run {args.thread} waits for an answer: "
                f"{snapshot.interrupts[0].value['question']} (pass --answer)"
            )
        return Command(resume=args.answer)
    if not snapshot.next:
        raise UsageError(f"run {args.thread} has already finished; start a new one")
    return None


def ask(question: str) -> str | None:
    """Ask on the terminal; None when there is no one to ask."""
    if not sys.stdin.isatty():
        return None
    return input(f"{question}\n> ").strip()
