"""Web search through Tavily (`tavily-python`'s `TavilyClient`).

Each Tavily result becomes a `SearchHit` (title, content, url as `source`, score).
Tavily's `images` belong to the query, not to one result: they are attached to the
first hit. With `include_answer`, Tavily's short answer (a summary of the results it
returned) comes first, as a hit titled "Tavily answer" whose source is the top result's
URL; it is extra, on top of `max_results` results. Failures raise `SearchUnavailable`
with a message that never contains the API key.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.base import SearchHit

logger = logging.getLogger(__name__)

ANSWER_TITLE = "Tavily answer"


CONNECTIONS = 64  # searches in flight at once across runs sharing this client

class TavilySearch:
    """`SearchProvider` backed by the Tavily search API."""

    name = "tavily"

    def __init__(
        self,
        api_key: str | None = None,
        api_base_url: str | None = None,
        include_answer: bool = True,
        include_images: bool = True,
        search_depth: str = "basic",
        timeout: float = 20.0,
    ) -> None:
        from tavily import TavilyClient

        key = api_key if api_key is not None else os.environ.get("TAVILY_API_KEY", "")
        if not key.strip():
            raise SearchUnavailable("Tavily needs an API key: set TAVILY_API_KEY.")
        self._key = key
        self.include_answer = include_answer
        self.include_images = include_images
        self.search_depth = search_depth
        self.timeout = timeout
        self._client = TavilyClient(api_key=key, api_base_url=api_base_url, session=_session())

    def search(self, query: str, max_results: int = 3) -> list[SearchHit]:
        """Search the web; raises `SearchUnavailable` on network, HTTP or auth errors."""
        try:
            response = self._client.search(
                query,
                search_depth=self.search_depth,
                max_results=max_results,
                include_answer=self.include_answer,
                include_images=self.include_images,
                timeout=self.timeout,
            )
        except Exception as exc:
            raise SearchUnavailable(self._describe(exc)) from None
        hits = _hits(response, max_results)
        logger.info("Tavily: %d hits for %r", len(hits), query)
        return hits

    def _describe(self, exc: Exception) -> str:
        """A one-line, key-free description of a failed request."""
        import requests
        from tavily import errors

        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, errors.InvalidAPIKeyError) or status == 401:
            what = "the API key was rejected (HTTP 401): check TAVILY_API_KEY"
        elif isinstance(exc, errors.UsageLimitExceededError) or status == 429:
            what = "the usage limit is exceeded (HTTP 429)"
        elif isinstance(exc, errors.ForbiddenError):
            what = "access is forbidden (HTTP 403)"
        elif isinstance(exc, errors.BadRequestError):
            what = f"the request was refused (HTTP 400: {exc})"
        elif isinstance(exc, errors.TimeoutError):
            what = f"no answer within {self.timeout:g}s"
        elif isinstance(exc, requests.HTTPError) and status is not None:
            what = f"the service answered HTTP {status}"
        elif isinstance(exc, requests.ConnectionError):
            what = "it cannot be reached (network)"
        elif isinstance(exc, ValueError):
            what = "its answer was not valid JSON"
        else:
            what = f"{type(exc).__name__}: {exc}"
        message = f"Tavily search failed: {what}."
        return " ".join(message.replace(self._key, "***").split())


def _image_urls(images: Any) -> list[str]:
    """Tavily gives image URLs as strings, or as {url, description} with descriptions on."""
    urls = []
    for item in images or []:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


def _hits(response: dict[str, Any], max_results: int) -> list[SearchHit]:
    """Turn a Tavily search response into hits (answer first, images on the first hit)."""
    hits = [
        SearchHit(
            title=str(r.get("title") or ""),
            content=str(r.get("content") or ""),
            source=str(r.get("url") or ""),
            score=float(r.get("score") or 0.0),
        )
        for r in response.get("results", [])[:max_results]
        if r.get("content") and r.get("url")
    ]
    answer = response.get("answer")
    if answer and hits:
        top = hits[0]
        hits.insert(
            0,
            SearchHit(title=ANSWER_TITLE, content=str(answer), source=top.source, score=top.score),
        )
    images = _image_urls(response.get("images"))
    if hits and images:
        hits[0].image_urls = images
    return hits


def _session():
    """One HTTP session whose pool holds as many connections as runs search at once (requests'
    default of 10 drops and re-opens connections when more runs share the client)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
