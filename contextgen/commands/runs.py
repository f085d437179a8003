"""`contextgen runs list|show ID|replay ID --from NODE`: durable runs and time travel.

Every `contextgen generate` run is checkpointed after each step, in
`<data dir>/checkpoints.sqlite` or in PostgreSQL when `CONTEXTGEN_DATABASE_URL` is set.
`runs list` and `runs show` read those checkpoints; `runs replay` forks a run from the
checkpoint before a node (`get_state_history` / `update_state`), optionally with a changed
style or prompt, and runs it from there into a new run folder. The original run is kept.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from contextgen.commands import UsageError, writable_folder
from contextgen.graphs.context import Context

REPLAYABLE = ("analyze_intent", "search", "recall_memory", "synthesize_prompt", "generate",
              "judge", "remember")


def register(subcommands) -> None:
    parser = subcommands.add_parser("runs", help="List, inspect and replay checkpointed runs.")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="Runs in the checkpoint store, newest first.")
    listing.add_argument("--limit", type=int, default=20, help="How many runs to show.")
    listing.set_defaults(run=list_runs)
    show = actions.add_parser("show", help="A run's request, status, outputs and checkpoints.")
    show.add_argument("thread_id")
    show.set_defaults(run=show_run)
    replay = actions.add_parser(
        "replay", help="Fork a run before NODE and run it again from there (time travel)."
    )
    replay.add_argument("thread_id")
    replay.add_argument("--from", dest="node", required=True, choices=REPLAYABLE,
                        help="Re-run this node and everything after it.")
    replay.add_argument("--checkpoint", help="Fork from this checkpoint id (see runs show); "
                        "default: the first checkpoint before NODE.")
    replay.add_argument("--style", help="Replace the analysed style (from synthesize_prompt on).")
    replay.add_argument("--prompt", help="Replace the prompt (with --from generate).")
    replay.add_argument("--max-rounds", type=int, help="Generate-and-judge rounds at most.")
    replay.add_argument("--out", help="Run folder (default: outputs/<thread id>-replay-<n>).")
    replay.set_defaults(run=replay_run)


def _agent(context: Context):
    """The image agent on the CLI's checkpoint store (PostgreSQL when CONTEXTGEN_DATABASE_URL
    is set, else SQLite in the data folder); a usage error when there is no SQLite store yet."""
    from contextgen.checkpoints import open_checkpointer
    from contextgen.graphs.image_agent import build_graph

    sqlite_file = Path(context.data_dir) / "checkpoints.sqlite"
    if not context.database_url and not sqlite_file.exists():
        raise UsageError(f"no runs in {context.data_dir} yet; start one with contextgen generate")
    saver = open_checkpointer(context.data_dir, context.database_url)
    return saver, build_graph(checkpointer=saver)


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def run_status(snapshot) -> str:
    """finished, waiting for an answer, or stopped before the next node(s) (resumable)."""
    if snapshot.interrupts:
        return "waiting for an answer"
    if not snapshot.next:
        return "finished" if "accepted" in snapshot.values else "ended"
    return f"stopped before {', '.join(dict.fromkeys(snapshot.next))}"


def _when(snapshot) -> str:
    stamp = snapshot.created_at or ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def list_runs(args: argparse.Namespace) -> int:
    from contextgen.checkpoints import recent_threads

    saver, agent = _agent(Context())
    thread_ids = recent_threads(saver, max(args.limit, 1))
    if not thread_ids:
        print("No runs yet.")
    for thread_id in thread_ids:
        snapshot = agent.get_state(_config(thread_id))
        request = str(snapshot.values.get("request", ""))
        request = request if len(request) <= 60 else request[:57] + "..."
        print(f"{thread_id}  {_when(snapshot)}  {run_status(snapshot):<28}  {request}")
    return 0


def show_run(args: argparse.Namespace) -> int:
    _, agent = _agent(Context())
    snapshot = agent.get_state(_config(args.thread_id))
    if not snapshot.values:
        raise UsageError(f"no run with thread id {args.thread_id!r}; see contextgen runs list")
    from contextgen.run_record import RUN_FOLDER_KEY, RunSummary
    from contextgen.runner import RunOutcome

    summary = RunSummary.from_outcome(RunOutcome(state=snapshot.values), Context(), args.thread_id)
    print(f"Run {args.thread_id}: {run_status(snapshot)}")
    print(f"Request: {summary.request or ''}")
    if summary.intent:
        intent = summary.intent
        print(f"Intent: {intent.subject} (route {intent.route}, style {intent.style or '-'})")
    print(summary.text().lstrip("\n"))
    folder = (snapshot.metadata or {}).get(RUN_FOLDER_KEY)
    if folder:
        print(f"Run folder: {folder}")
    print("\nCheckpoints (oldest first; replay with --from NODE or --checkpoint ID):")
    for step in reversed(list(agent.get_state_history(_config(args.thread_id)))):
        next_nodes = ", ".join(dict.fromkeys(step.next)) or "(end)"
        source = step.metadata.get("source", "") if step.metadata else ""
        print(f"  {step.config['configurable']['checkpoint_id']}  step {step.metadata.get('step')}"
              f"  {source:<6}  next: {next_nodes}")
    if snapshot.next and not snapshot.interrupts:
        print(f"\nResume with: contextgen generate --thread {args.thread_id}")
    return 0


def fork_point(agent, thread_id: str, node: str, checkpoint_id: str | None = None):
    """The checkpoint to fork from: the given id, else the first one on the run's current
    branch whose next step runs `node`. Returns (snapshot, its parent snapshot or None)."""
    history = list(agent.get_state_history(_config(thread_id)))
    if not history:
        raise UsageError(f"no run with thread id {thread_id!r}; see contextgen runs list")
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in history}
    if checkpoint_id:
        if checkpoint_id not in by_id:
            raise UsageError(f"run {thread_id} has no checkpoint {checkpoint_id!r}")
        branch = [by_id[checkpoint_id]]
    else:
        branch, current = [], history[0]  # newest first; follow parents back to the input
        while current is not None:
            branch.append(current)
            parent = current.parent_config
            current = by_id.get(parent["configurable"]["checkpoint_id"]) if parent else None
        branch = [s for s in reversed(branch) if node in s.next]
        if not branch:
            raise UsageError(f"run {thread_id} never reached {node}; see contextgen runs show")
    snapshot = branch[0]
    parent = snapshot.parent_config
    return snapshot, by_id.get(parent["configurable"]["checkpoint_id"]) if parent else None


def replay_run(args: argparse.Namespace) -> int:
    from contextgen.progress_display import ProgressDisplay
    from contextgen.run_record import RUN_FOLDER_KEY, RunSummary, write_run_files
    from contextgen.runner import run_agent

    if args.prompt and args.node != "generate":
        raise UsageError("--prompt replaces the written prompt: use it with --from generate")
    if args.style and args.node in ("analyze_intent", "search", "recall_memory"):
        raise UsageError("--style applies from synthesize_prompt on (analysis would redo it)")
    base = Context()
    _, agent = _agent(base)
    snapshot, parent = fork_point(agent, args.thread_id, args.node, args.checkpoint)
    changes: dict[str, Any] = {}
    if args.style:
        changes["intent"] = snapshot.values["intent"].model_copy(update={"style": args.style})
    if args.prompt:
        package = snapshot.values.get("prompt_package")
        if package is None:
            raise UsageError("this checkpoint has no prompt to replace")
        changes["prompt_package"] = package.model_copy(update={"prompt": args.prompt})
    config = snapshot.config
    if changes:
        writers = [name for name in (parent.next if parent else ()) if name != "__start__"]
        if not writers:
            raise UsageError("this checkpoint cannot be edited; choose a later --from node")
        config = agent.update_state(config, changes, as_node=writers[-1])
        if args.node not in agent.get_state(config).next:
            raise UsageError(f"the edited fork would not run {args.node}; pick --checkpoint")

    out_dir = writable_folder(
        args.out or _replay_folder(Path(base.output_dir), args.thread_id),
        "--out" if args.out else "the replay folder (CONTEXTGEN_OUTPUT_DIR)",
    )
    overrides: dict[str, Any] = {"output_dir": str(out_dir)}
    if args.max_rounds is not None:
        overrides["max_rounds"] = args.max_rounds
    context = Context(**overrides)
    forked_from = snapshot.config["configurable"]["checkpoint_id"]
    print(f"replay {args.thread_id} from {args.node} (checkpoint {forked_from}) -> {out_dir}",
          file=sys.stderr)
    config = {**config, "metadata": {RUN_FOLDER_KEY: str(out_dir)}}
    outcome = run_agent(agent, None, context=context, config=config,
                        on_progress=ProgressDisplay())
    replay = {"from_node": args.node, "forked_from_checkpoint": forked_from,
              "changes": {k: args.style if k == "intent" else args.prompt for k in changes}}
    summary = RunSummary.from_outcome(outcome, context, args.thread_id, replay=replay)
    print(write_run_files(out_dir, summary).text(out_dir))
    return 0


def _replay_folder(output_root: Path, thread_id: str) -> Path:
    number = 1
    while (output_root / f"{thread_id}-replay-{number}").exists():
        number += 1
    return output_root / f"{thread_id}-replay-{number}"
