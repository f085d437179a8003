"""The HTML run report renders in a real browser: headless Chromium (Debian's `chromium`).

A two-round run on in-process fakes writes run.json and report.html; Chromium loads the report
from disk, and the DOM it dumps after the load event shows every section and every image
loaded (the report marks an image `data-loaded` on load and its figure `missing` on error).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from contextgen.cli import main
from contextgen.graphs.state import Memory
from contextgen.tools.backends import use_backends
from tests.fakes import PLATYPUS_HIT, ListMemory, synthesis_reply, verdict

SECTIONS = ("request", "intent", "research", "evidence", "memories", "rounds", "round-1",
            "round-2", "prompt", "path", "timings")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return os.environ.get("CHROMIUM")


class DomSummary(HTMLParser):
    """Ids, images (with their attributes) and links of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []
        self.figures: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "img":
            self.images.append(attributes)
        elif tag == "figure":
            self.figures.append(attributes.get("class") or "")
        elif tag == "a":
            self.links.append(attributes.get("href") or "")


@pytest.fixture
def report(context, fake_backends, tmp_path, monkeypatch) -> Path:
    """A finished two-round run folder (the judge rejects round 1's prompt, accepts round 2)."""
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", context.data_dir)
    backends = fake_backends(
        syntheses=[synthesis_reply("A duck in a creek <b>not bold</b>"), synthesis_reply()],
        memory=ListMemory([Memory(id="m1", kind="preference", text="I like dawn light")]),
        verdicts=[verdict("prompt", accepted=False, score=0.3), verdict()],
    )
    folder = tmp_path / "run"
    with use_backends(backends):
        assert main(["generate", "the egg-laying mammal of eastern Australia",
                     "--out", str(folder)]) == 0
    return folder / "report.html"


def test_report_has_every_part(report):
    record = json.loads((report.parent / "run.json").read_text())
    page = report.read_text()
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert 'src="round-1.png"' in page and 'src="round-2.png"' in page  # relative: movable
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page  # model text is escaped
    assert PLATYPUS_HIT.source in page and "I like dawn light" in page


@pytest.fixture
def chromium() -> str:
    """The browser; skipped without one, except in CI (`make test` installs it there)."""
    path = find_chromium()
    if path is None:
        message = "needs Chromium: apt-get install chromium (make test does it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return path


def test_report_renders_in_headless_chromium(report, chromium, tmp_path):
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--allow-file-access-from-files", "--virtual-time-budget=5000"]
    dumped = subprocess.run(
        [*browser, "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    dom = DomSummary()
    dom.feed(dumped)
    assert set(SECTIONS) <= dom.ids, sorted(set(SECTIONS) - dom.ids)
    assert len(dom.images) == 2
    assert all(image.get("data-loaded") == "true" for image in dom.images), dom.images
    assert not [f for f in dom.figures if "missing" in f]
    assert PLATYPUS_HIT.source in dom.links
    assert re.search(r"Round 2: prompt", dumped)

    screenshot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={screenshot}", "--window-size=1280,2000",
                    report.as_uri()], capture_output=True, timeout=120, check=True)
    assert screenshot.stat().st_size > 10_000


def test_moved_image_is_marked_missing(report, chromium, tmp_path):
    (report.parent / "round-1.png").unlink()
    dumped = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    dom = DomSummary()
    dom.feed(dumped)
    assert dom.figures.count("missing") == 1
    assert [image.get("data-loaded") for image in dom.images] == [None, "true"]
