"""The HTML run report (`report.html` beside `run.json`): one self-contained page per run.

It shows the request, the intent analysis, the queries and the evidence with links, the
memories used, each round's prompt, image and verdict side by side, the graph path taken and
the time per node. Images are linked by relative path, never embedded; all text is escaped.
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
            _intent(record.get("intent")),
            _research(record),
            _memories(record.get("memories_used") or []),
            _rounds(record, folder),
            _final_prompt(record.get("final_prompt")),
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
    accepted = record.get("accepted")
    verdict_tag = (
        '<span class="tag ok">accepted</span>'
        if accepted
        else '<span class="tag bad">not accepted</span>'
    )
    notices = record.get("notices") or []
    notice_html = "<h3>Notices</h3>" + _list(notices) if notices else ""
    return (
        f'<header id="request"><h1>{_e(record.get("request"))}</h1>'
        f'<p class="meta">user <b>{_e(record.get("user_id"))}</b> &middot; thread '
        f'<code>{_e(record.get("thread_id"))}</code> &middot; {_e(record.get("status"))} '
        f'{verdict_tag} &middot; {_e(record.get("finished_at"))} &middot; '
        f'{float(record.get("wall_seconds") or 0):.1f}s</p>{notice_html}</header>'
    )


def _intent(intent: dict[str, Any] | None) -> str:
    if not intent:
        return '<section id="intent"><h2>Intent analysis</h2><em>not analysed</em></section>'
    rows = [
        ("Subject", _e(intent.get("subject"))),
        ("Style", _e(intent.get("style")) or "<em>not stated</em>"),
        ("Route", f'<span class="tag">{_e(intent.get("route"))}</span>'),
        ("Constraints", _list(intent.get("constraints") or [])),
        ("Implied", _list(intent.get("implicit") or [])),
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


def _rounds(record: dict[str, Any], folder: Path) -> str:
    blocks = []
    for item in record.get("rounds") or []:
        number = item.get("round")
        image = item.get("image")
        verdict = item.get("verdict")
        if image:
            src = _image_src(image["path"], folder)
            picture = (
                f'<figure><img src="{_e(src)}" alt="round {_e(number)} image" '
                f'width="{_e(image.get("width"))}" height="{_e(image.get("height"))}" '
                "onload=\"this.dataset.loaded='true'\" "
                "onerror=\"this.parentElement.classList.add('missing')\">"
                f"<figcaption><small>{_e(Path(image['path']).name)} &middot; seed "
                f"{_e(image.get('seed'))} &middot; {_e(image.get('model'))}</small></figcaption>"
                "</figure>"
            )
        else:
            picture = "<p><em>No image this round.</em></p>"
        if verdict and verdict.get("judged", True):
            tag = "ok" if verdict.get("accepted") else "bad"
            judged = (
                f'<p><span class="tag {tag}">score {float(verdict.get("score") or 0):.2f}</span>'
                f'<span class="tag">{_e(verdict.get("problem"))}</span></p>'
                f"{_list(verdict.get('issues') or [])}"
            )
            if verdict.get("missing_knowledge"):
                judged += "<p>Missing knowledge:</p>" + _list(verdict["missing_knowledge"])
        elif verdict:
            judged = f"<p><em>Unjudged:</em> {_e('; '.join(verdict.get('issues') or []))}</p>"
        else:
            judged = "<p><em>No verdict.</em></p>"
        blocks.append(
            f'<div class="round" id="round-{_e(number)}"><div><h3>Round {_e(number)}: prompt</h3>'
            f"<p>{_e(item.get('prompt'))}</p></div><div><h3>Image</h3>{picture}</div>"
            f"<div><h3>Verdict</h3>{judged}</div></div>"
        )
    content = "".join(blocks) or "<p><em>No rounds ran.</em></p>"
    return f'<section id="rounds"><h2>Rounds</h2>{content}</section>'


def _final_prompt(package: dict[str, Any] | None) -> str:
    if not package:
        return '<section id="prompt"><h2>Grounded prompt</h2><em>none</em></section>'
    facts = "".join(
        f"<tr><td>{_e(fact.get('statement'))}</td><td>{_link(fact.get('source', ''))}</td></tr>"
        for fact in package.get("facts") or []
    )
    references = package.get("reference_images") or []
    return (
        f'<section id="prompt"><h2>Grounded prompt</h2><blockquote>{_e(package.get("prompt"))}'
        f"</blockquote><p>Negative prompt: {_e(package.get('negative_prompt')) or '<em>none</em>'}"
        f"</p><table><tr><th>Fact</th><th>Source</th></tr>{facts}</table>"
        f"<h3>Reference images</h3>{_list(references)}</section>"
    )


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
    steps = "".join(f"<li>{_e(node)}</li>" for node in path)
    return (
        f'<section id="path"><h2>Graph path</h2><ol class="path">{steps}</ol>'
        f'<h3 id="timings">Time per node</h3><table>{rows}</table>{llm_line}</section>'
    )
