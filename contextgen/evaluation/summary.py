"""Aggregate results.jsonl: per category and overall, agent against baseline, with deltas;
write summary.md and the test-time scaling plot (score reached within r rounds)."""

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
               "rounds", "images_generated")


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    """A record's value for a metric as a number (booleans as 0/1), None when not measured."""
    if metric in ("wiscore", "verified"):
        value = (record.get("image_score") or {}).get(metric)
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
    return summary


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
    labels = {"closure": "Context closure (LLM judge)", "keyword_hit": "Keyword hit",
              "wiscore": "WiScore (WISE rubric)", "verified": "WISE-Verified (binary)"}
    for metric, label in labels.items():
        if all(table[c][a][metric] is None for c in table for a in arms):
            continue
        percent = metric != "wiscore"
        lines += [f"## {label}", "",
                  "| category | n | agent | baseline | delta |", "|---|---|---|---|---|"]
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


def scaling_curve(records: list[dict[str, Any]], metric: str, max_rounds: int) -> list[float]:
    """Share of agent items whose metric succeeded within r rounds, for r = 1..max_rounds
    (items that failed to finish count as misses)."""
    agent = [r for r in records if r.get("arm", "agent") == "agent"]
    if not agent:
        return []
    curve = []
    for budget in range(1, max_rounds + 1):
        hits = [
            (metric_value(r, metric) or 0.0) if (r.get("rounds") or 1) <= budget else 0.0
            for r in agent
        ]
        curve.append(round(mean(hits), 4))
    return curve


def plot_scaling(records: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path:
    """PNG: each metric reached within r rounds (agent), the baseline at 0 rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    max_rounds = max([r.get("rounds") or 1 for r in records] + [1])
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    overall = summary["table"]["overall"]
    for metric in METRICS:
        if overall.get("agent", {}).get(metric) is None:
            continue
        curve = scaling_curve(records, metric, max_rounds)
        xs, ys = list(range(1, max_rounds + 1)), curve
        baseline = overall.get("baseline", {}).get(metric)
        if baseline is not None:
            xs, ys = [0, *xs], [baseline, *ys]
        axes.plot(xs, ys, marker="o", label=metric)
    axes.set_xlabel("rounds (0 = baseline: the request as the prompt)")
    axes.set_ylabel("score reached within r rounds")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xticks(range(0, max_rounds + 1))
    axes.set_title("Test-time scaling")
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
