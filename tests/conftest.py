"""Shared fixtures: offline environment and a context pointing at temporary folders."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGGRAPH_CLI_NO_ANALYTICS", "1")

from contextgen.graphs.context import Context  # noqa: E402


@pytest.fixture
def context(tmp_path) -> Context:
    """A context whose data and outputs live in the test's temporary folder."""
    return Context(
        data_dir=str(tmp_path / "data"),
        output_dir=str(tmp_path / "out"),
        max_rounds=3,
        generator_model="none",
    )


@pytest.fixture
def embedded_default(tmp_path):
    """A data folder with the 0.5B model and a tiny corpus, a tiny generator, a run folder."""
    from tests.real_backends import prepare_data_dir, remove_models, save_tiny_generator

    data_dir = prepare_data_dir(tmp_path / "data")
    generator = save_tiny_generator(tmp_path / "tiny-qwen-image")
    yield data_dir, generator, tmp_path / "run"
    remove_models(data_dir)
