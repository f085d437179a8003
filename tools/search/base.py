"""The search interface every provider implements."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class SearchHit(BaseModel):
    """One search result. `source` is a URL or 'corpus:<document id>'."""

    title: str = ""
    content: str
    source: str
    score: float = 0.0
    image_urls: list[str] = Field(default_factory=list)


class SearchProvider(Protocol):
    """Finds text about a query. Raises `SearchUnavailable` when it cannot be reached."""

    name: str

    def search(self, query: str, max_results: int = 3) -> list[SearchHit]: ...
