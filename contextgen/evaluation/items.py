"""Benchmark items, read from the file formats the field uses.

- WISE / WISE-Verified: a JSON list of objects with `Prompt`, `Explanation`, `Category`,
  `Subcategory`, `prompt_id`.
- T2I-ReasonBench style: objects (JSON list or JSONL) with `prompt` and `explicit_meaning`
  and/or evaluation criteria (`criteria`, `evaluation_criteria`, `evaluation_questions`).
- Plain JSONL: one `{"id", "prompt", "expected", "keywords", "category"?}` per line.

An `EvalItem` keeps the request apart from its `AnswerKey`: the harness gives the agent only
`item.prompt`; the answer key goes to the judges alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

CRITERIA_FIELDS = ("criteria", "evaluation_criteria", "evaluation_questions", "questions")


class AnswerKey(BaseModel):
    """What the image must show. Only judges ever see it."""

    expected: str = Field(description="What a correct image shows (WISE's Explanation).")
    keywords: list[list[str]] = Field(
        default_factory=list,
        description="Keyword groups: each group is a list of synonyms; every group must be hit.",
    )


class EvalItem(BaseModel):
    """One benchmark request and its answer key."""

    id: str
    prompt: str
    category: str = "uncategorized"
    subcategory: str = ""
    answer: AnswerKey


class ItemFormatError(ValueError):
    """The file is not in a format the harness reads; the message says which ones it does."""


def load_items(path: str | Path) -> list[EvalItem]:
    """Read every item of a benchmark file, detecting its format from its content."""
    path = Path(path)
    if not path.is_file():
        raise ItemFormatError(f"{path} is not a file")
    records = _records(path)
    if not records:
        raise ItemFormatError(f"{path} holds no items")
    items = [_item(record, number, path) for number, record in enumerate(records, start=1)]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ItemFormatError(f"{path}: item id {item.id!r} appears twice")
        seen.add(item.id)
    return items


def _records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # JSON Lines
    if isinstance(data, dict):
        data = data.get("items") or data.get("data") or [data]
    if data is None:
        data = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ItemFormatError(f"{path}:{number}: not JSON ({error})") from error
    if not all(isinstance(record, dict) for record in data):
        raise ItemFormatError(f"{path}: expected JSON objects")
    return data


def _item(record: dict[str, Any], number: int, path: Path) -> EvalItem:
    if "Prompt" in record:  # WISE / WISE-Verified
        prompt = _request_text(record, "Prompt", number, path)
        if not _is_text(record.get("Explanation")):
            raise ItemFormatError(f"{path}: item {number} has no 'Explanation' (its answer key)")
        return EvalItem(
            id=str(record.get("prompt_id", number)),
            prompt=prompt,
            category=str(record.get("Category") or path.stem),  # WISE ships a file per category
            subcategory=str(record.get("Subcategory") or ""),
            answer=AnswerKey(expected=record["Explanation"].strip()),
        )
    if "prompt" not in record:
        raise ItemFormatError(
            f"{path}: item {number} has neither 'Prompt' (WISE) nor 'prompt' "
            "(T2I-ReasonBench or plain JSONL with id/prompt/expected/keywords)"
        )
    expected = record.get("expected") or record.get("explicit_meaning") or ""
    criteria = [record[name] for name in CRITERIA_FIELDS if record.get(name)]
    if criteria:
        expected = "\n".join([str(expected), *(_as_text(c) for c in criteria)]).strip()
    if not expected and not record.get("keywords"):
        raise ItemFormatError(
            f"{path}: item {number} has no answer key "
            "('expected', 'explicit_meaning', criteria or 'keywords')"
        )
    return EvalItem(
        id=str(record.get("id", record.get("prompt_id", number))),
        prompt=_request_text(record, "prompt", number, path),
        category=str(record.get("category") or record.get("Category") or path.stem),
        subcategory=str(record.get("subcategory") or ""),
        answer=AnswerKey(expected=str(expected), keywords=_keyword_groups(record.get("keywords"))),
    )


def _request_text(record: dict[str, Any], field: str, number: int, path: Path) -> str:
    """The item's request: non-empty text, or an ItemFormatError naming the item."""
    if not _is_text(record[field]):
        raise ItemFormatError(f"{path}: item {number}'s {field!r} must be non-empty text")
    return record[field].strip()


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _keyword_groups(raw: Any) -> list[list[str]]:
    """`["a", "b"]` is one group of synonyms; `[["a", "b"], ["c"]]` is two groups."""
    if not raw:
        return []
    if isinstance(raw, str):
        return [[raw]]
    if all(isinstance(entry, str) for entry in raw):
        return [list(raw)]
    return [[entry] if isinstance(entry, str) else [str(e) for e in entry] for entry in raw]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(f"- {_as_text(v)}" for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_as_text(v)}" for k, v in value.items())
    return str(value)
