"""Aggregate results.jsonl: per category and overall, agent against baseline, with deltas;
who judged closure and how often it was overruled; grounding; stability over repeats; score
and cost per item at each candidate count; write summary.md and the test-time scaling plot
(score reached within r rounds, one curve per candidate count when there are several)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from contextgen.evaluation.image_score import weighted_overall, wise_group
from contextgen.evaluation.items import AnswerKey, EvalItem

SUMMARY_FILE = "summary.md"
PLOT_FILE = "scaling.png"
METRICS = ("closure", "keyword_hit", "wiscore", "verified")
COST_FIELDS = ("wall_seconds", "llm_calls", "input_tokens", "output_tokens", "search_calls",
               "rounds", "images_generated", "images_judged", "generate_seconds",
               "judge_seconds")
# Per candidate count: (record field, column heading, shown as "score", "percent" or "number").
CANDIDATE_COLUMNS = (
    ("judge_score", "judge score", "score"), ("wiscore", "WiScore", "score"),
    ("closure", "closure", "percent"), ("images_generated", "images generated", "number"),
    ("images_judged", "images judged", "number"), ("wall_seconds", "wall s", "number"),
    ("generate_seconds", "generate s", "number"), ("judge_seconds", "judge s", "number"),
    ("llm_calls", "LLM calls", "number"), ("input_tokens", "input tokens", "number"),
    ("output_tokens", "output tokens", "number"),
)
ENOUGH_SOURCED_FACTS = 2


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    """A record's value for a metric as a number (booleans as 0/1), None when not measured.
    `judge_score` is the best score the agent's own judge gave in the run."""
    if metric in ("wiscore", "verified"):
        value = (record.get("image_score") or {}).get(metric)
    elif metric == "judge_score":
        value = max(record.get("round_scores") or [], default=None)
    else:
        value = record.get(metric)
    if value is None:
        return None
    return float(value)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(mean(present), 4) if present else None


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates per category and overall for each arm, deltas, mean costs, WISE-weighted WiScore."""
    by_arm: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_arm[record.get("arm", "agent")].append(record)
    categories = sorted({r.get("category", "uncategorized") for r in records})
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for category in [*categories, "overall"]:
        row: dict[str, dict[str, Any]] = {}
        for arm, arm_records in by_arm.items():
            chosen = [r for r in arm_records
                      if category == "overall" or r.get("category") == category]
            values = {m: [metric_value(r, m) for r in chosen] for m in METRICS}
            row[arm] = {"n": len(chosen)} | {m: _mean(v) for m, v in values.items()} | {
                "measured": {m: sum(x is not None for x in v) for m, v in values.items()}
            }
        table[category] = row
    summary: dict[str, Any] = {"table": table, "arms": sorted(by_arm), "cost": {}, "wise": {}}
    for arm, arm_records in by_arm.items():
        cost = {f: _mean([r.get(f) for r in arm_records]) for f in COST_FIELDS}
        cost["errors"] = sum(1 for r in arm_records if r.get("error"))
        per_node: dict[str, list[float]] = defaultdict(list)
        for r in arm_records:
            for node, seconds in (r.get("seconds_per_node") or {}).items():
                per_node[node].append(seconds)
        cost["seconds_per_node"] = {n: round(sum(v) / len(arm_records), 3)
                                    for n, v in sorted(per_node.items())}
        summary["cost"][arm] = cost
        groups: dict[str, list[float | None]] = defaultdict(list)
        for r in arm_records:
            group = wise_group(_item_of(r))
            if group:
                groups[group].append(metric_value(r, "wiscore"))
        group_means = {g: m for g, v in groups.items() if (m := _mean(v)) is not None}
        summary["wise"][arm] = weighted_overall(group_means)
    summary["judge"] = judge_summary(records)
    summary["grounding"] = grounding_summary(by_arm.get("agent", []))
    summary["repeats"] = {arm: repeat_summary(arm_records) for arm, arm_records in by_arm.items()}
    summary["candidates"] = candidates_summary(by_arm.get("agent", []))
    return summary


def candidate_count(record: dict[str, Any]) -> int:
    """Images per round the record's run made (1 in files written before best-of-N)."""
    return int(record.get("candidates", 1))


def candidates_summary(agent_records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per candidate count: runs, mean scores and mean cost per item (CANDIDATE_COLUMNS), and
    how many runs failed."""
    by_count: dict[int, list[dict]] = defaultdict(list)
    for record in agent_records:
        by_count[candidate_count(record)].append(record)
    return {
        count: {"n": len(chosen), "errors": sum(1 for r in chosen if r.get("error"))} | {
            column: _mean([metric_value(r, column) for r in chosen])
            for column, _, _ in CANDIDATE_COLUMNS
        }
        for count, chosen in sorted(by_count.items())
    }


def judge_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Who judged closure, how many times it said closed, and how many of those were overruled
    (records written before verdicts were checked this way count for neither)."""
    checked = [r for r in records if "closure_overruled" in r]
    return {
        "labels": sorted({r["closure_judge"] for r in checked if r.get("closure_judge")}),
        "said_closed": sum(1 for r in checked if r["closure"] or r["closure_overruled"]),
        "overruled": sum(1 for r in checked if r["closure_overruled"]),
    }


def grounding_summary(agent_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over agent runs closed by keyword: the share with at least ENOUGH_SOURCED_FACTS sourced
    visual facts in the prompt, and the mean count."""
    counts = [r["sourced_visual_facts"] for r in agent_records
              if r.get("keyword_hit") is True and r.get("sourced_visual_facts") is not None]
    return {
        "n": len(counts),
        "enough": _mean([float(c >= ENOUGH_SOURCED_FACTS) for c in counts]),
        "mean": _mean([float(c) for c in counts]),
    }


def repeat_summary(arm_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Keyword hit per repeat (and its n), and `stable`: the share of items (at each candidate
    count) measured in every repeat whose keyword verdict is the same in all of them (None with
    a single repeat)."""
    by_repeat: dict[int, list[dict]] = defaultdict(list)
    verdicts: dict[tuple[str, int], dict[int, bool]] = defaultdict(dict)
    for r in arm_records:
        repeat = int(r.get("repeat", 1))
        by_repeat[repeat].append(r)
        if r.get("keyword_hit") is not None:
            verdicts[str(r["id"]), candidate_count(r)][repeat] = bool(r["keyword_hit"])
    per_repeat = {
        repeat: {"keyword_hit": _mean([metric_value(r, "keyword_hit") for r in chosen]),
                 "n": sum(r.get("keyword_hit") is not None for r in chosen)}
        for repeat, chosen in sorted(by_repeat.items())
    }
    if len(by_repeat) < 2:
        return {"per_repeat": per_repeat, "stable": None}
    complete = [v for v in verdicts.values() if set(v) == set(by_repeat)]
    same = [float(len(set(v.values())) == 1) for v in complete]
    return {"per_repeat": per_repeat, "stable": {"share": _mean(same), "n": len(complete)}}


def _item_of(record: dict[str, Any]) -> EvalItem:
    return EvalItem(id=str(record["id"]), prompt=record.get("request", ""),
                    category=record.get("category", ""), subcategory=record.get("subcategory", ""),
                    answer=AnswerKey(expected=""))


def _fmt(value: float | None, percent: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def _delta(agent: float | None, baseline: float | None, percent: bool = True) -> str:
    if agent is None or baseline is None:
        return "–"
    diff = agent - baseline
    return f"{diff * 100:+.1f} pt" if percent else f"{diff:+.3f}"


def render_markdown(summary: dict[str, Any], title: str = "contextgen evaluation") -> str:
    """summary.md: one table per metric (rows: categories), then the cost of each arm."""
    table, arms = summary["table"], summary["arms"]
    lines = [f"# {title}", ""]
    counts = sorted(summary["candidates"])
    if len(counts) > 1:
        lines += [f"The agent ran at {', '.join(map(str, counts))} candidates per round; the "
                  "tables pool them, and 'Candidates per round' shows each.", ""]
    labels = {"closure": "Context closure (LLM judge)", "keyword_hit": "Keyword hit",
              "wiscore": "WiScore (WISE rubric)", "verified": "WISE-Verified (binary)"}
    for metric, label in labels.items():
        if all(table[c][a][metric] is None for c in table for a in arms):
            continue
        percent = metric != "wiscore"
        lines += [f"## {label}", ""]
        if metric == "closure":
            lines += _judge_lines(summary["judge"])
        lines += ["| category | n | agent | baseline | delta |", "|---|---|---|---|---|"]
        for category, row in table.items():
            agent, baseline = row.get("agent", {}), row.get("baseline", {})
            n = max(arm_row.get("measured", {}).get(metric, 0) for arm_row in (agent, baseline))
            name = f"**{category}**" if category == "overall" else category
            lines.append(
                f"| {name} | {n} | {_fmt(agent.get(metric), percent)} | "
                f"{_fmt(baseline.get(metric), percent)} | "
                f"{_delta(agent.get(metric), baseline.get(metric), percent)} |"
            )
        if metric == "wiscore" and any(v is not None for v in summary["wise"].values()):
            wise = summary["wise"]
            lines.append(f"| **WISE-weighted overall** | | {_fmt(wise.get('agent'), False)} | "
                         f"{_fmt(wise.get('baseline'), False)} | "
                         f"{_delta(wise.get('agent'), wise.get('baseline'), False)} |")
        lines.append("")
    lines += _grounding_lines(summary["grounding"])
    lines += _repeat_lines(summary["repeats"], arms)
    lines += _candidate_lines(summary["candidates"])
    lines += ["## Cost per item (means)", "", "| | " + " | ".join(arms) + " |",
              "|---|" + "---|" * len(arms)]
    for field in (*COST_FIELDS, "errors"):
        values = [summary["cost"][arm].get(field) for arm in arms]
        lines.append(f"| {field} | " + " | ".join(
            "–" if v is None else (str(v) if field == "errors" else f"{v:g}") for v in values
        ) + " |")
    nodes = sorted({n for arm in arms for n in summary["cost"][arm]["seconds_per_node"]})
    if nodes:
        lines += ["", "Seconds per node (mean per item):", "",
                  "| node | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
        for node in nodes:
            lines.append(f"| {node} | " + " | ".join(
                f"{summary['cost'][arm]['seconds_per_node'].get(node, 0):g}" for arm in arms
            ) + " |")
    lines.append("")
    return "\n".join(lines)


def _judge_lines(judge: dict[str, Any]) -> list[str]:
    """The sentence above the LLM-judge table: which model judged, and how often its
    'closed' verdicts were overruled."""
    if not judge["labels"]:
        return []
    return [
        f"The closure judge is {' and '.join(judge['labels'])}. "
        f"{judge['overruled']} of its {judge['said_closed']} 'closed' verdicts were overruled: "
        "the quote was not in the prompt, or named nothing of the answer key beyond the request.",
        "",
    ]


def _grounding_lines(grounding: dict[str, Any]) -> list[str]:
    if not grounding["n"]:
        return []
    return [
        "## Grounding (agent runs closed by keyword)", "",
        "A sourced visual fact cites retrieved evidence (a URL or corpus document), is not the "
        "subject's name, and reaches the prompt.", "",
        "| n | with >= 2 sourced visual facts | mean sourced visual facts |", "|---|---|---|",
        f"| {grounding['n']} | {_fmt(grounding['enough'])} | {grounding['mean']:.2f} |", "",
    ]


def _repeat_lines(repeats: dict[str, dict[str, Any]], arms: list[str]) -> list[str]:
    """Keyword hit per repeat and overall, and how stable the verdicts are (several repeats)."""
    measured = [arm for arm in arms if repeats[arm]["stable"] is not None]
    if not measured:
        return []
    numbers = sorted({n for arm in measured for n in repeats[arm]["per_repeat"]})
    lines = ["## Keyword hit per repeat", "",
             "| repeat | " + " | ".join(f"{arm} (n)" for arm in measured) + " |",
             "|---|" + "---|" * len(measured)]
    for number in numbers:
        cells = [repeats[arm]["per_repeat"].get(number, {"keyword_hit": None, "n": 0})
                 for arm in measured]
        lines.append(f"| {number} | " + " | ".join(
            f"{_fmt(cell['keyword_hit'])} ({cell['n']})" for cell in cells) + " |")
    overall = []
    for arm in measured:
        per_repeat = repeats[arm]["per_repeat"].values()
        n = sum(cell["n"] for cell in per_repeat)
        hits = sum((cell["keyword_hit"] or 0.0) * cell["n"] for cell in per_repeat)
        overall.append(f"{_fmt(hits / n if n else None)} ({n})")
    lines.append("| **all repeats** | " + " | ".join(overall) + " |")
    lines.append("| **stable** | " + " | ".join(
        f"{_fmt(repeats[arm]['stable']['share'])} ({repeats[arm]['stable']['n']})"
        for arm in measured) + " |")
    lines += ["", "Stable: the share of items (measured in every repeat) whose keyword verdict "
              "is the same in all repeats. The tables above count every repeat's run.", ""]
    return lines


def _candidate_lines(candidates: dict[int, dict[str, Any]]) -> list[str]:
    """Score and cost per item at each candidate count (when the agent made more than one
    image per round at any count)."""
    if list(candidates) in ([], [1]):
        return []
    lines = ["## Candidates per round (agent, means per item)", "",
             "| candidates | n | " + " | ".join(h for _, h, _ in CANDIDATE_COLUMNS)
             + " | errors |", "|---|---|" + "---|" * (len(CANDIDATE_COLUMNS) + 1)]
    for count, row in candidates.items():
        cells = [_cell(row[column], kind) for column, _, kind in CANDIDATE_COLUMNS]
        lines.append(f"| {count} | {row['n']} | " + " | ".join(cells) + f" | {row['errors']} |")
    lines += ["", "judge score: the best score the agent's judge gave in the run; WiScore: the "
              "eval's image scorer on the final image; generate s and judge s: seconds in those "
              "nodes.", ""]
    return lines


def _cell(value: float | None, kind: str) -> str:
    if value is None or kind != "number":
        return _fmt(value, percent=kind == "percent")
    return f"{value:g}"


def scaling_curve(records: list[dict[str, Any]], metric: str, max_rounds: int,
                  candidates: int | None = None) -> list[float]:
    """Mean score of agent items reached within r rounds, for r = 1..max_rounds: for
    `judge_score` the best of the first r rounds' scores, for other metrics the item's value
    when it finished within r rounds (items that failed to finish count as misses). With
    `candidates`, only the runs at that count."""
    agent = [r for r in records if r.get("arm", "agent") == "agent"
             and (candidates is None or candidate_count(r) == candidates)]
    if not agent:
        return []
    curve = []
    for budget in range(1, max_rounds + 1):
        if metric == "judge_score":
            hits = [max((r.get("round_scores") or [])[:budget], default=0.0) for r in agent]
        else:
            hits = [(metric_value(r, metric) or 0.0) if (r.get("rounds") or 1) <= budget else 0.0
                    for r in agent]
        curve.append(round(mean(hits), 4))
    return curve


def plot_scaling(records: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path:
    """PNG: each metric reached within r rounds (agent), the baseline at 0 rounds; with
    several candidate counts, one curve per count of the judge's score (closure when nothing
    was judged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    max_rounds = max([r.get("rounds") or 1 for r in records] + [1])
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    overall = summary["table"]["overall"]
    counts = sorted(summary["candidates"])
    judged = any(row["judge_score"] is not None for row in summary["candidates"].values())
    headline = "judge_score" if judged else "closure"
    curves = ([(headline, count, f"{count} candidate{'s' if count > 1 else ''}")
               for count in counts] if len(counts) > 1 else
              [(metric, None, metric) for metric in METRICS
               if overall.get("agent", {}).get(metric) is not None])
    for metric, count, label in curves:
        xs, ys = list(range(1, max_rounds + 1)), scaling_curve(records, metric, max_rounds, count)
        baseline = overall.get("baseline", {}).get(metric)
        if baseline is not None:
            xs, ys = [0, *xs], [baseline, *ys]
        axes.plot(xs, ys, marker="o", label=label)
    axes.set_xlabel("rounds (0 = baseline: the request as the prompt)")
    axes.set_ylabel(f"{headline.replace('_', ' ')} within r rounds" if len(counts) > 1
                    else "score reached within r rounds")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xticks(range(0, max_rounds + 1))
    axes.set_title("Test-time scaling: candidates and rounds" if len(counts) > 1
                   else "Test-time scaling")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def write_reports(records: list[dict[str, Any]], out_dir: Path,
                  title: str = "contextgen evaluation") -> dict[str, Any]:
    """Write summary.md and scaling.png into `out_dir`; return the summary."""
    summary = summarize(records)
    (out_dir / SUMMARY_FILE).write_text(render_markdown(summary, title), encoding="utf-8")
    plot_scaling(records, summary, out_dir / PLOT_FILE)
    return summary
