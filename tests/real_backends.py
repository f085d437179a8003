"""Real components for the integration tests: the embedded 0.5B model, a tiny local corpus and
a tiny diffusers pipeline, all under one data folder, configured through environment variables.

The LangGraph server and the `contextgen` CLI run in other processes, where the in-process
`use_backends` fakes cannot reach: there the real backends answer, chosen by `CONTEXTGEN_*`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contextgen.graphs.context import Context
from contextgen.langgraph_dev import OFFLINE_ENV
from contextgen.langgraph_dev import free_port as free_port  # the tests' servers share it
from contextgen.tools.local_llm.weights import ensure_gguf

SMALL_MODEL = "qwen2.5-coder-0.5b"
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

DOCUMENTS = {
    "platypus.md": "# Platypus\n\nThe platypus (Ornithorhynchus anatinus) is a semiaquatic, "
    "egg-laying mammal endemic to eastern Australia. It has a duck-like bill, a beaver-like "
    "tail, otter-like feet and dense brown fur, and hunts in creeks at dawn and dusk.",
    "mooncake.md": "# Mooncake\n\nMooncakes are round Chinese pastries shared at the "
    "Mid-Autumn Festival, with a golden-brown crust stamped with a pattern and a lotus seed "
    "paste filling.",
}


def prepare_data_dir(data_dir: Path, *, corpus: bool = True) -> Path:
    """Assemble the 0.5B GGUF into data_dir/models and index the tiny documents folder."""
    context = Context(data_dir=str(data_dir))
    ensure_gguf(SMALL_MODEL, context.models_dir)
    if corpus:
        from contextgen.tools.search.documents import read_documents
        from contextgen.tools.search.local_corpus import LocalCorpus

        folder = data_dir / "documents"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in DOCUMENTS.items():
            (folder / name).write_text(text)
        LocalCorpus(context.corpus_dir).add_documents(list(read_documents(folder)))
    return data_dir


def remove_models(data_dir: Path) -> None:
    """Delete the assembled GGUF (half a gigabyte) so kept temp folders do not pile up."""
    for gguf in (data_dir / "models").glob("*.gguf"):
        gguf.unlink()


def save_tiny_generator(folder: Path) -> Path:
    """Save the tiny random Qwen-Image pipeline (in a subprocess: torch stays out of this one)."""
    code = (
        "import sys; from contextgen.benchmarks.tiny_pipeline import "
        "save_tiny_qwen_image_pipeline as save; save(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True)
    return folder


def offline_env(data_dir: Path, out_dir: Path, generator: str | Path = "none", **extra: str):
    """Environment for a server or CLI subprocess: offline, embedded 0.5B model, tiny sizes."""
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "HF_HUB_OFFLINE": "1",
        "CONTEXTGEN_DATA_DIR": str(data_dir),
        "CONTEXTGEN_OUTPUT_DIR": str(out_dir),
        "CONTEXTGEN_EMBEDDED_MODEL": SMALL_MODEL,
        "CONTEXTGEN_SEARCH": "local",
        "CONTEXTGEN_GENERATOR": str(generator),
        "CONTEXTGEN_DEVICE": "cpu",
        "CONTEXTGEN_STEPS": "2",
        "CONTEXTGEN_WIDTH": "32",
        "CONTEXTGEN_HEIGHT": "32",
        "CONTEXTGEN_MAX_ROUNDS": "1",
        **extra,
    }
    for name in ("OPENAI_API_KEY", "TAVILY_API_KEY", "CONTEXTGEN_CHAT_BASE_URL",
                 "CONTEXTGEN_JUDGE_MODEL"):
        env.pop(name, None)
    return env
