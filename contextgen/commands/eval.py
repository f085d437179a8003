"""`contextgen eval FILE --out DIR`: measure context closure (and image quality) on a benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contextgen.commands import UsageError, writable_folder


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "eval",
        help="Evaluate the agent (and the bare request with --baseline) on a benchmark file.",
        description="Reads WISE / WISE-Verified JSON, T2I-ReasonBench-style JSON(L) or plain "
        "JSONL ({id, prompt, expected, keywords}); writes results.jsonl (resumable), summary.md "
        "and scaling.png into --out.",
    )
    parser.add_argument("file", help="Benchmark file.")
    parser.add_argument("--out", required=True, help="Output folder (a rerun resumes in it).")
    parser.add_argument("--baseline", action="store_true",
                        help="Also score the bare path: the request itself as the prompt.")
    parser.add_argument("--limit", type=int, help="Evaluate the first N items only.")
    parser.add_argument("--categories", help="Comma-separated categories or subcategories.")
    parser.add_argument("--workers", type=int, default=1,
                        help="Items evaluated at once (useful with remote endpoints).")
    parser.add_argument("--max-rounds", type=int, help="Generate-and-judge rounds at most.")
    parser.add_argument("--use-memory", action="store_true",
                        help="Let the agent recall and store memories (off: items independent).")
    parser.add_argument("--repeats", type=int, default=1,
                        help="Run every item N times (1 to 10) to see how stable verdicts are.")
    parser.add_argument("--candidates",
                        help="Images per round to run the agent at, e.g. 1,2,4: each count is a "
                        "run of every item (default: CONTEXTGEN_CANDIDATES, else 1).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from contextgen.evaluation.harness import MAX_REPEATS, EvalHarness, EvalOptions, select_items
    from contextgen.evaluation.items import ItemFormatError, load_items
    from contextgen.evaluation.summary import PLOT_FILE, SUMMARY_FILE, write_reports
    from contextgen.graphs.context import Context

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not 1 <= args.repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats must be between 1 and {MAX_REPEATS}, got {args.repeats}")
    candidates = candidate_counts(args.candidates) if args.candidates is not None else []
    try:
        items = load_items(args.file)
    except ItemFormatError as error:
        raise UsageError(str(error)) from error
    options = EvalOptions(
        baseline=args.baseline, limit=args.limit, workers=args.workers,
        categories=[c for c in (args.categories or "").split(",") if c.strip()],
        use_memory=args.use_memory, repeats=args.repeats, candidates=candidates,
    )
    if not select_items(items, options):
        raise UsageError(f"no items in {args.file} match --categories {args.categories}")
    overrides = {"max_rounds": args.max_rounds} if args.max_rounds else {}
    context = Context(**overrides)
    out_dir = writable_folder(args.out, "--out")
    harness = EvalHarness(context, out_dir, options=options)
    pending = harness.pending(select_items(items, options))
    print(f"{len(pending)} run(s) to do -> {out_dir}", file=sys.stderr)

    def progress(iterable):
        return tqdm(iterable, total=len(pending), desc="eval", unit="run",
                    disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)

    records = harness.run(items, progress=progress)
    selected = {item.id for item in select_items(items, options)}
    counts = harness.candidate_counts
    records = [r for r in records if str(r["id"]) in selected and r["repeat"] <= args.repeats
               and (r["arm"] == "baseline" or r["candidates"] in counts)]
    summary = write_reports(records, out_dir, title=f"contextgen eval: {Path(args.file).name}")
    overall = summary["table"]["overall"]
    for arm in summary["arms"]:
        row = overall[arm]
        keyword = "" if row["keyword_hit"] is None else f", keyword hit {row['keyword_hit']:.0%}"
        image = "" if row["wiscore"] is None else f", WiScore {row['wiscore']:.3f}"
        print(f"{arm}: closure {row['closure']:.0%} of {row['n']}{keyword}{image}")
    if len(counts) > 1:
        for count, row in summary["candidates"].items():
            score = "" if row["judge_score"] is None else f"judge score {row['judge_score']:.2f}, "
            print(f"agent at {count} candidates: {score}closure {row['closure']:.0%}, "
                  f"{row['images_generated'] or 0:g} images and {row['wall_seconds'] or 0:g} s "
                  "per item")
    errors = sum(summary["cost"][arm]["errors"] for arm in summary["arms"])
    if errors:
        print(f"{errors} run(s) failed (see 'error' in results.jsonl); rerun to retry them.",
              file=sys.stderr)
    print(f"Wrote {out_dir / 'results.jsonl'}, {out_dir / SUMMARY_FILE}, {out_dir / PLOT_FILE}")
    store = "" if context.database_url else f"CONTEXTGEN_DATA_DIR={out_dir} "
    print(f"Inspect an agent run (its thread_id is in results.jsonl): {store}contextgen runs show "
          "THREAD_ID", file=sys.stderr)
    return 0


def candidate_counts(text: str) -> list[int]:
    """`--candidates 1,2,4` as sorted distinct counts, each within Context's bounds."""
    from dataclasses import fields

    from contextgen.graphs.context import Context

    low, high = next(f for f in fields(Context) if f.name == "candidates").metadata["bounds"]
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        counts = []
    if not counts or not all(low <= count <= high for count in counts):
        raise UsageError(f"--candidates takes counts from {low} to {high} separated by commas, "
                         f"e.g. 1,2,4; got {text!r}")
    return counts
