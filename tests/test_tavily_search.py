"""The real TavilyClient, through TavilySearch, against a local server that speaks Tavily's API."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fake_tavily_server import FakeTavily, start_fake_tavily, stop_fake_tavily

from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.base import SearchProvider
from contextgen.tools.search.tavily import ANSWER_TITLE, TavilySearch

KEY = "tvly-test-SECRET-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeTavily]:
    state = start_fake_tavily()
    yield state
    stop_fake_tavily(state)


def test_hits_are_parsed_and_key_sent_as_bearer(fake: FakeTavily) -> None:
    search: SearchProvider = TavilySearch(api_key=KEY, api_base_url=fake.url)
    assert search.name == "tavily"

    hits = search.search("What does a mooncake look like?", max_results=2)

    answer, first, second = hits
    assert answer.title == ANSWER_TITLE and answer.content.startswith("Summary: A mooncake")
    assert answer.source == first.source == "https://en.wikipedia.org/wiki/Mooncake"
    assert answer.image_urls == ["https://upload.example.org/mooncake.jpg"]
    assert first.title == "Mooncake - Wikipedia" and first.score == pytest.approx(0.91)
    assert "golden-brown" in first.content and first.image_urls == []
    assert second.source == "https://example.org/mooncake-molds"

    (request,) = fake.requests
    assert request.path == "/search"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["query"] == "What does a mooncake look like?"
    assert request.body["max_results"] == 2
    assert request.body["include_answer"] is True and request.body["include_images"] is True


def test_without_answer_and_no_results(fake: FakeTavily) -> None:
    search = TavilySearch(api_key=KEY, api_base_url=fake.url, include_answer=False)
    hits = search.search("lantern riddles", max_results=3)
    assert [h.source for h in hits] == ["https://en.wikipedia.org/wiki/Lantern_Festival"]
    assert search.search("nothing matches this", max_results=3) == []


@pytest.mark.parametrize(("status", "words"), [(401, "rejected"), (500, "HTTP 500")])
def test_http_errors_raise_without_leaking_key(
    fake: FakeTavily, status: int, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_with(status)
    with pytest.raises(SearchUnavailable, match=words) as info:
        TavilySearch(api_key=KEY, api_base_url=fake.url).search("mooncake")
    assert KEY not in str(info.value) and "SECRET" not in caplog.text
    assert info.value.__cause__ is None  # the client's exception (and its request) is not chained


def test_unreachable_server_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    search = TavilySearch(api_key=KEY, api_base_url=f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(SearchUnavailable, match="cannot be reached") as info:
        search.search("mooncake")
    assert KEY not in str(info.value)

    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(SearchUnavailable, match="TAVILY_API_KEY"):
        TavilySearch()
