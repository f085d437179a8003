"""The HTML run report (`report.html` beside `run.json`): one self-contained page per run.

It leads with the result: the final image (and the round's other candidates), whether it was
accepted, rejected or never judged, the grounded prompt with its facts and sources, and the
reference images. Then the trace: notices, the intent analysis, the queries and the evidence
with links, the memories used, each round's prompt, image(s) and verdict side by side, the
graph path taken, the time per node and what the images cost. Images are linked by relative
path, never embedded; all text is escaped.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any

REPORT_FILE = "report.html"

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#1d1d1f;background:#fafafa}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
section{margin-bottom:1.5rem}.meta{color:#555}.tag{display:inline-block;padding:0 .5rem;
border-radius:.6rem;background:#e8e8ed;margin-right:.3rem;font-size:.85rem}
.ok{background:#d7f5dd}.bad{background:#fde2e1}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e5e5e5;padding:.3rem .5rem;text-align:left;vertical-align:top}
.round{display:grid;grid-template-columns:1fr minmax(200px,320px) 1fr;gap:1rem;
background:#fff;border:1px solid #e5e5e5;border-radius:.5rem;padding:1rem;margin-bottom:1rem}
.round img{width:100%;height:auto;image-rendering:pixelated;border-radius:.3rem;background:#eee}
figure{margin:0}figure.missing figcaption::after{content:" (image file not found)";color:#b00}
.bar{background:#6e8efb;height:.8rem;border-radius:.2rem}.path li{display:inline}
.path li+li::before{content:" \\2192  "}blockquote{margin:.3rem 0;color:#444}
.result{display:grid;grid-template-columns:minmax(240px,420px) 1fr;gap:1.5rem;align-items:start}
.result img,.candidates img,.references img{width:100%;height:auto;image-rendering:pixelated;
border-radius:.3rem;background:#eee}.result blockquote{font-size:1.1rem;color:#1d1d1f}
.candidates,.references{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));
gap:.6rem}.kept{outline:3px solid #34c759;border-radius:.3rem}
"""


def write_report(folder: Path, record: dict[str, Any]) -> Path:
    """Write report.html for `record` (run.json's content) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILE
    path.write_text(render_report(record, folder), encoding="utf-8")
    return path


def render_report(record: dict[str, Any], folder: Path) -> str:
    """The whole page as a string; image paths are made relative to `folder`."""
    title = f"contextgen run {record.get('thread_id', '')}"
    body = "\n".join(
        [
            _header(record),
            _result(record, folder),
            _notices(record.get("notices") or []),
            '<h2 id="trace">How it got there</h2>',
            _intent(record.get("intent")),
            _research(record),
            _memories(record.get("memories_used") or []),
            _rounds(record, folder),
            _path_and_timings(record),
        ]
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _e(value: Any) -> str:
    return escape(str(value if value is not None else ""), quote=True)


def _link(source: str, text: str | None = None) -> str:
    """A link for web sources; corpus, memory and reasoning sources stay plain text."""
    label = _e(text or source)
    if source.startswith(("http://", "https://")):
        return f'<a href="{_e(source)}" rel="noopener noreferrer">{label}</a>'
    return f"<code>{label}</code>" if not text else label


def _list(items: list[Any]) -> str:
    if not items:
        return "<em>none</em>"
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def _header(record: dict[str, Any]) -> str:
    return (
        f'<header id="request"><h1>{_e(record.get("request"))}</h1>'
        f'<p class="meta">{_outcome_tag(record)} &middot; user <b>{_e(record.get("user_id"))}</b>'
        f' &middot; thread <code>{_e(record.get("thread_id"))}</code> &middot; '
        f'{_e(record.get("status"))} &middot; {_e(record.get("finished_at"))} &middot; '
        f'{float(record.get("wall_seconds") or 0):.1f}s</p></header>'
    )


def _outcome_tag(record: dict[str, Any]) -> str:
    """accepted, not accepted (a judge looked and said no), or unjudged (nothing judged)."""
    if record.get("accepted"):
        return '<span class="tag ok" id="outcome">accepted</span>'
    verdicts = [item.get("verdict") for item in record.get("rounds") or []]
    if any(verdict and verdict.get("judged", True) for verdict in verdicts):
        return '<span class="tag bad" id="outcome">not accepted</span>'
    return '<span class="tag" id="outcome">unjudged</span>'


def _notices(notices: list[str]) -> str:
    if not notices:
        return ""
    return f'<section id="notices"><h2>Notices</h2>{_list(notices)}</section>'


def _result(record: dict[str, Any], folder: Path) -> str:
    """The final image (beside the other candidates of its round), its verdict, the grounded
    prompt with its facts, and the reference images."""
    final = record.get("final_image")
    rounds = {item.get("round"): item for item in record.get("rounds") or []}
    final_round = rounds.get(final["round"], {}) if final else {}
    if final:
        picture = _figure(final, folder, f"final image (round {final['round']})")
    else:
        picture = "<p><em>No image was generated (see the notices).</em></p>"
    candidates = final_round.get("candidates") or []
    if candidates:
        picture += f"<h3>Candidates of round {_e(final['round'])}</h3>" + _candidates(
            candidates, final, folder
        )
    return (
        f'<section id="result"><h2>Result</h2><div class="result"><div>{picture}'
        f"{_verdict(final_round.get('verdict')) if final else ''}</div>"
        f"<div>{_final_prompt(record.get('final_prompt'))}</div></div>"
        f"{_references(record, folder)}</section>"
    )


def _intent(intent: dict[str, Any] | None) -> str:
    if not intent:
        return '<section id="intent"><h2>Intent analysis</h2><em>not analysed</em></section>'
    rows = [
        ("Subject", _e(intent.get("subject"))),
        ("Style", _e(intent.get("style")) or "<em>not stated</em>"),
        ("Route", f'<span class="tag">{_e(intent.get("route"))}</span>'),
        ("Constraints", _list(intent.get("constraints") or [])),
        ("Knowledge gaps", _list(intent.get("knowledge_gaps") or [])),
        ("Candidate names", _list(intent.get("candidate_names") or [])),
        ("Stated preferences", _list(intent.get("stated_preferences") or [])),
    ]
    if intent.get("ambiguous"):
        rows.append(("Asked the user", _e(intent.get("clarifying_question"))))
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<section id="intent"><h2>Intent analysis</h2><table>{table}</table></section>'


def _research(record: dict[str, Any]) -> str:
    queries = record.get("queries") or []
    evidence = record.get("evidence") or []
    rows = "".join(
        f"<tr><td>{_link(item.get('source', ''), item.get('title') or item.get('source'))}"
        f"<br><small>{_link(item.get('source', ''))}</small></td>"
        f"<td>{_e(item.get('query'))}</td><td>{_e(item.get('provider'))}</td>"
        f"<td>{float(item.get('score') or 0):.2f}</td>"
        f"<td><blockquote>{_e(item.get('excerpt'))}</blockquote></td></tr>"
        for item in evidence
    )
    table = (
        "<table><tr><th>Source</th><th>Query</th><th>Provider</th><th>Score</th>"
        f"<th>Excerpt</th></tr>{rows}</table>"
        if evidence
        else "<p><em>No evidence was retrieved.</em></p>"
    )
    return (
        f'<section id="research"><h2>Research</h2><h3>Queries</h3>{_list(queries)}'
        f'<h3 id="evidence">Evidence</h3>{table}</section>'
    )


def _memories(memories: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(m.get('id'))}</code></td><td>{_e(m.get('kind'))}</td>"
        f"<td>{_e(m.get('text'))}</td><td>{float(m.get('score') or 0):.2f}</td></tr>"
        for m in memories
    )
    content = (
        f"<table><tr><th>Id</th><th>Kind</th><th>Memory</th><th>Score</th></tr>{rows}</table>"
        if memories
        else "<p><em>No memories were used.</em></p>"
    )
    return f'<section id="memories"><h2>Memories used</h2>{content}</section>'


def _image_src(path: str, folder: Path) -> str:
    image = Path(path).resolve()
    try:
        return Path(os.path.relpath(image, folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return image.as_uri()


def _figure(image: dict[str, Any], folder: Path, alt: str, caption: str = "") -> str:
    """An image file as a figure: marked `data-loaded` on load, its figure `missing` on error."""
    src = _image_src(image["path"], folder)
    details = caption or (
        f"{_e(Path(image['path']).name)} &middot; seed {_e(image.get('seed'))} &middot; "
        f"{_e(image.get('model'))}"
    )
    return (
        f'<figure><img src="{_e(src)}" alt="{_e(alt)}" '
        f'width="{_e(image.get("width"))}" height="{_e(image.get("height"))}" '
        "onload=\"this.dataset.loaded='true'\" "
        "onerror=\"this.parentElement.classList.add('missing')\">"
        f"<figcaption><small>{details}</small></figcaption></figure>"
    )


def _candidates(candidates: list[dict[str, Any]], kept: dict[str, Any] | None, folder: Path) -> str:
    """A round's candidates side by side, each with its score; the kept one outlined."""
    cells = []
    for item in candidates:
        image, verdict = item["image"], item.get("verdict")
        if verdict and verdict.get("judged", True):
            score = f"score {float(verdict.get('score') or 0):.2f}"
        else:
            score = "unjudged"
        is_kept = bool(kept) and image["path"] == kept["path"]
        caption = (
            f"candidate {_e(image.get('candidate'))} &middot; seed {_e(image.get('seed'))} "
            f"&middot; {score}{' &middot; <b>kept</b>' if is_kept else ''}"
        )
        figure = _figure(image, folder, f"round {image.get('round')} candidate "
                         f"{image.get('candidate')}", caption)
        cells.append(f'<div class="{"kept" if is_kept else ""}">{figure}</div>')
    return f'<div class="candidates">{"".join(cells)}</div>'


def _verdict(verdict: dict[str, Any] | None) -> str:
    if verdict and verdict.get("judged", True):
        tag = "ok" if verdict.get("accepted") else "bad"
        html = (
            f'<p><span class="tag {tag}">score {float(verdict.get("score") or 0):.2f}</span>'
            f'<span class="tag">{_e(verdict.get("problem"))}</span></p>'
            f"{_list(verdict.get('issues') or [])}"
        )
        if verdict.get("missing_knowledge"):
            html += "<p>Missing knowledge:</p>" + _list(verdict["missing_knowledge"])
        return html
    if verdict:
        return f"<p><em>Unjudged:</em> {_e('; '.join(verdict.get('issues') or []))}</p>"
    return "<p><em>No verdict.</em></p>"


def _rounds(record: dict[str, Any], folder: Path) -> str:
    blocks = []
    final = record.get("final_image")
    for item in record.get("rounds") or []:
        number = item.get("round")
        image = item.get("image")
        if item.get("candidates"):
            picture = _candidates(item["candidates"], image, folder)
        elif image:
            picture = _figure(image, folder, f"round {number} image")
        else:
            picture = "<p><em>No image this round.</em></p>"
        if final and image and image["path"] == final["path"]:
            picture += '<p><span class="tag ok">final image</span></p>'
        blocks.append(
            f'<div class="round" id="round-{_e(number)}"><div><h3>Round {_e(number)}: prompt</h3>'
            f"<p>{_e(item.get('prompt'))}</p></div><div><h3>Image</h3>{picture}</div>"
            f"<div><h3>Verdict</h3>{_verdict(item.get('verdict'))}</div></div>"
        )
    content = "".join(blocks) or "<p><em>No rounds ran.</em></p>"
    return f'<section id="rounds"><h2>Rounds</h2>{content}</section>'


def _final_prompt(package: dict[str, Any] | None) -> str:
    if not package:
        return '<div id="prompt"><h3>Grounded prompt</h3><em>none</em></div>'
    facts = "".join(
        f"<tr><td>{_e(fact.get('statement'))}</td><td>{_link(fact.get('source', ''))}</td></tr>"
        for fact in package.get("facts") or []
    )
    facts_table = (
        f"<table><tr><th>Fact</th><th>Source</th></tr>{facts}</table>"
        if facts
        else "<p><em>No facts: the request is drawn as asked.</em></p>"
    )
    return (
        f'<div id="prompt"><h3>Grounded prompt</h3><blockquote>{_e(package.get("prompt"))}'
        f"</blockquote><p>Negative prompt: {_e(package.get('negative_prompt')) or '<em>none</em>'}"
        f'</p><h3 id="facts">Facts</h3>{facts_table}</div>'
    )


def _references(record: dict[str, Any], folder: Path) -> str:
    """The reference images: each stored one with its source and sha256, each rejected one with
    the reason, and those the run never fetched (nothing used them) as plain sources."""
    package = record.get("final_prompt") or {}
    records = {item["source"]: item for item in record.get("references") or []}
    sources = list(dict.fromkeys([*(package.get("reference_images") or []), *records]))
    if not sources:
        return ""
    cells, rejected, unfetched = [], [], []
    for source in sources:
        item = records.get(source)
        if item and item.get("path"):
            caption = (
                f"{_link(source, Path(source).name or source)}<br>sha256 "
                f"<code>{_e(item.get('sha256', '')[:12])}</code> &middot; "
                f"{_e(item.get('width'))}x{_e(item.get('height'))}"
            )
            cells.append(_figure(item, folder, f"reference image from {source}", caption))
        elif item:
            rejected.append(f"<li>{_link(source)}: {_e(item.get('rejected'))}</li>")
        else:
            unfetched.append(f"<li>{_link(source)}</li>")
    html = f'<div class="references">{"".join(cells)}</div>' if cells else ""
    if rejected:
        html += f"<p>Not used:</p><ul>{''.join(rejected)}</ul>"
    if unfetched:
        html += (
            "<p>Not fetched (no edit model or judge to use them):</p>"
            f"<ul>{''.join(unfetched)}</ul>"
        )
    return f'<div id="references"><h3>Reference images</h3>{html}</div>'


def _path_and_timings(record: dict[str, Any]) -> str:
    path = record.get("path") or []
    seconds = record.get("seconds_per_node") or {}
    longest = max(seconds.values(), default=0) or 1
    rows = "".join(
        f"<tr><td>{_e(node)}</td><td>{value:.2f}s</td><td style=\"width:60%\">"
        f'<div class="bar" style="width:{100 * value / longest:.1f}%"></div></td></tr>'
        for node, value in sorted(seconds.items(), key=lambda kv: -kv[1])
    )
    llm = (record.get("llm") or {}).get("total") or {}
    llm_line = (
        f"<p>LLM: {int(llm.get('calls', 0))} calls, {int(llm.get('input_tokens', 0))} input and "
        f"{int(llm.get('output_tokens', 0))} output tokens, "
        f"{float(llm.get('output_tokens_per_second', 0)):.1f} tokens/s</p>"
        if llm
        else ""
    )
    cost = record.get("cost") or {}
    cost_line = (
        f'<p id="cost">Images: {int(cost.get("images_generated", 0))} generated in '
        f'{float(cost.get("generate_seconds", 0)):.1f}s, {int(cost.get("images_judged", 0))} '
        f'judged in {float(cost.get("judge_seconds", 0)):.1f}s</p>'
        if cost
        else ""
    )
    steps = "".join(f"<li>{_e(node)}</li>" for node in path)
    return (
        f'<section id="path"><h2>Graph path</h2><ol class="path">{steps}</ol>'
        f'<h3 id="timings">Time per node</h3><table>{rows}</table>{llm_line}{cost_line}'
        "</section>"
    )
