"""The README's promises: two set-up commands on top, and a graph diagram that matches the code."""

from pathlib import Path

from contextgen.commands.graph import mermaid

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_graph_is_generated_from_code():
    assert mermaid() in README.read_text(), "README graph is stale: paste `contextgen graph`"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    first_block = README.read_text().split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line]
    assert commands == ["make demo", "make test"]
    ci_script = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci_script
