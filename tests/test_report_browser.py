"""The HTML run report renders in a real browser: headless Chromium (Debian's `chromium`).

Runs on in-process fakes write run.json and report.html; Chromium loads the report from disk,
and the DOM it dumps after the load event shows the result first (final image, prompt, facts),
then the trace, with every image loaded (the report marks an image `data-loaded` on load and
its figure `missing` on error).
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
from PIL import Image

from contextgen.cli import main
from contextgen.graphs.state import Memory, Verdict
from contextgen.tools.backends import use_backends
from tests.fakes import PLATYPUS_HIT, ListMemory, verdict

RESULT_FIRST = ("request", "result", "prompt", "facts", "trace", "intent", "research",
                "evidence", "memories", "rounds", "round-1", "round-2", "path", "timings")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return os.environ.get("CHROMIUM")


class DomSummary(HTMLParser):
    """Ids (in document order), images (with their attributes), figures, links and the
    elements with a class of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.figures: list[str] = []
        self.links: list[str] = []
        self.kept: list[dict[str, str | None]] = []
        self._in_kept = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if tag == "div":
            self._in_kept = attributes.get("class") == "kept"
        if tag == "img":
            self.images.append(attributes)
            if self._in_kept:
                self.kept.append(attributes)
        elif tag == "figure":
            self.figures.append(attributes.get("class") or "")
        elif tag == "a":
            self.links.append(attributes.get("href") or "")


def rejecting_with_markup(round_number: int) -> Verdict:
    return Verdict(round=round_number, score=0.3, accepted=False, problem="prompt",
                   issues=["the bill is <b>not bold</b>"])


def generate(backends, folder: Path, *arguments: str) -> Path:
    with use_backends(backends):
        assert main(["generate", "the egg-laying mammal of eastern Australia",
                     "--out", str(folder), *arguments]) == 0
    return folder / "report.html"


@pytest.fixture
def report(context, fake_backends, tmp_path, monkeypatch) -> Path:
    """A finished two-round run folder (the judge rejects round 1's prompt, accepts round 2)."""
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", context.data_dir)
    backends = fake_backends(
        memory=ListMemory([Memory(id="m1", kind="preference", text="I like dawn light")]),
        verdicts=[rejecting_with_markup, verdict()],
    )
    return generate(backends, tmp_path / "run")


def dump_dom(chromium: str, report: Path, profile: Path) -> tuple[str, DomSummary]:
    dumped = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--allow-file-access-from-files",
         "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    dom = DomSummary()
    dom.feed(dumped)
    return dumped, dom


def test_report_has_every_part(report):
    record = json.loads((report.parent / "run.json").read_text())
    page = report.read_text()
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert 'src="round-1.png"' in page and 'src="round-2.png"' in page  # relative: movable
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold" not in page  # escaped
    assert PLATYPUS_HIT.source in page and "I like dawn light" in page
    assert record["cost"] == {"images_generated": 2, "images_judged": 2,
                              "generate_seconds": record["seconds_per_node"]["generate"],
                              "judge_seconds": record["seconds_per_node"]["judge"]}


def test_report_leads_with_the_result(report):
    page = report.read_text()
    result, intent = page.index('id="result"'), page.index('id="intent"')
    final_image = page.index('src="round-2.png"')
    assert result < final_image < page.index(record_prompt(report)) < intent
    assert page.index('id="outcome">accepted<') < result


def record_prompt(report: Path) -> str:
    return json.loads((report.parent / "run.json").read_text())["final_prompt"]["prompt"]


def test_a_run_with_no_judge_is_unjudged_not_rejected(context, fake_backends, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", context.data_dir)
    page = generate(fake_backends(judge=None), tmp_path / "run").read_text()
    assert 'id="outcome">unjudged<' in page
    assert "not accepted" not in page


@pytest.fixture
def chromium() -> str:
    """The browser; skipped without one, except in CI (`make test` installs it there)."""
    path = find_chromium()
    if path is None:
        message = "needs Chromium: apt-get install chromium (make test does it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return path


def test_report_renders_in_headless_chromium(report, chromium, tmp_path):
    dumped, dom = dump_dom(chromium, report, tmp_path / "profile")
    order = [name for name in dom.ids if name in RESULT_FIRST]
    assert order == list(RESULT_FIRST), order
    assert [Path(image["src"]).name for image in dom.images] == [
        "round-2.png", "round-1.png", "round-2.png"  # the final image first, then each round
    ]
    assert all(image.get("data-loaded") == "true" for image in dom.images), dom.images
    assert not [f for f in dom.figures if "missing" in f]
    assert PLATYPUS_HIT.source in dom.links
    assert re.search(r"Round 2: prompt", dumped)

    screenshot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
                    "--window-size=1280,2000", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert screenshot.stat().st_size > 10_000


def test_moved_image_is_marked_missing(report, chromium, tmp_path):
    (report.parent / "round-1.png").unlink()
    _, dom = dump_dom(chromium, report, tmp_path / "profile")
    assert dom.figures.count("missing") == 1
    assert [image.get("data-loaded") for image in dom.images] == ["true", None, "true"]


def by_seed(best_seed: int):
    """A judge that scores the candidate with `best_seed` highest, and accepts nothing."""

    class SeedJudge:
        def judge(self, request, package, image, references=()):
            score = 0.6 if image.seed == best_seed else 0.2
            return Verdict(round=image.round, score=score, accepted=False, problem="prompt")

    return SeedJudge()


def test_candidates_and_references_render(context, fake_backends, tmp_path, monkeypatch,
                                          chromium):
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", context.data_dir)
    reference = tmp_path / "my reference.png"
    Image.new("RGB", (24, 24), (10, 120, 200)).save(reference)
    backends = fake_backends(judge=by_seed(1))
    monkeypatch.setenv("CONTEXTGEN_CANDIDATES", "3")
    monkeypatch.setenv("CONTEXTGEN_MAX_ROUNDS", "1")
    report = generate(backends, tmp_path / "run", "--reference", str(reference))
    record = json.loads((report.parent / "run.json").read_text())
    [stored] = record["references"]
    assert stored["source"] == str(reference) and stored["sha256"]

    _, dom = dump_dom(chromium, report, tmp_path / "profile")
    names = [Path(image["src"]).name for image in dom.images]
    candidates = [f"round-1-candidate-{n}.png" for n in (1, 2, 3)]
    reference_file = Path(stored["path"]).name
    # result: the final image, its round's candidates, the reference; then the round's candidates
    assert names == ["round-1-candidate-2.png", *candidates, reference_file, *candidates]
    assert all(image.get("data-loaded") == "true" for image in dom.images), dom.images
    assert [Path(image["src"]).name for image in dom.kept] == ["round-1-candidate-2.png"] * 2
    assert 'id="outcome">not accepted<' in report.read_text()
