"""A regular (non-editable) `pip install .` ships every module and imports from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIPPED = shutil.ignore_patterns(
    ".venv", ".git", "outputs", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


def source_modules() -> set[str]:
    """Every module under the folders that pyproject.toml's package-dir maps, as dotted names."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = set()
    for package, folder in setuptools["package-dir"].items():
        for file in (REPO / folder).rglob("*.py"):
            parts = file.relative_to(REPO / folder).with_suffix("").parts
            modules.add(".".join((package, *parts)).removesuffix(".__init__"))
    return modules


def test_pip_install_ships_every_module_and_imports_from_anywhere(tmp_path) -> None:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=SKIPPED)  # the build writes build/ into its source
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(source)],
        check=True, timeout=600,
    )
    installed = {
        ".".join(p.relative_to(target).with_suffix("").parts).removesuffix(".__init__")
        for p in (target / "contextgen").rglob("*.py")
    }
    assert source_modules() <= installed, source_modules() - installed

    code = (
        "import contextgen.graphs.image_agent as agent, contextgen.nodes.judge, "
        "contextgen.tools.search.local_corpus, contextgen.tools.local_llm.server, "
        "contextgen.memory.store; from contextgen import build_graph; "
        "print(agent.__file__, sorted(build_graph().get_graph().nodes))"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(target)}, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    path, nodes = done.stdout.split(" ", 1)
    assert Path(path).is_relative_to(target)
    assert "synthesize_prompt" in nodes and "remember" in nodes
