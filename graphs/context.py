"""Runtime context: which backends a run uses. LangGraph Studio shows it as the assistant form.

Every field left at its default is read from an environment variable (named in the field's
metadata) when the context is created, so one `.env` configures the CLI, the server and tests.

Fields are of two kinds. Backend settings (models, URLs, device, data folders) decide which
backends a run talks to; `Context.backend_key` holds them, and backends are shared by every
run with the same key. Per-run options (`per_run` in the metadata: user, seed, rounds, output
folder, ...) change one run and never make a new backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Literal, get_args, get_origin, get_type_hints

from platformdirs import user_data_dir

DEFAULT_DATA_DIR = user_data_dir("contextgen", appauthor=False)


def _env(
    name: str,
    help_text: str,
    *,
    per_run: bool = False,
    bounds: tuple[float, float] | None = None,
) -> dict:
    return {"env": name, "description": help_text, "per_run": per_run, "bounds": bounds}


@dataclass(kw_only=True)
class Context:
    """Backends and limits for one run."""

    # Language model (intent, synthesis). Empty base URL and no OPENAI_API_KEY: embedded llama.cpp.
    chat_model: str = field(
        default="", metadata=_env("CONTEXTGEN_CHAT_MODEL", "Chat model name (empty: embedded).")
    )
    chat_base_url: str = field(
        default="",
        metadata=_env("CONTEXTGEN_CHAT_BASE_URL", "OpenAI-compatible base URL for the chat model."),
    )
    embedded_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = field(
        default="qwen2.5-coder-1.5b",
        metadata=_env("CONTEXTGEN_EMBEDDED_MODEL", "Model for the embedded llama.cpp server."),
    )
    prompt_writer: Literal["auto", "model", "composition"] = field(
        default="auto",
        metadata=_env(
            "CONTEXTGEN_PROMPT_WRITER",
            "Who writes the prompt from the checked parts. auto: composition on the embedded "
            "model (unless a critique or a past run the request points at must be worked in), "
            "else the model.",
            per_run=True,
        ),
    )
    # Vision-language judge. Empty: images are returned unjudged.
    judge_model: str = field(
        default="", metadata=_env("CONTEXTGEN_JUDGE_MODEL", "VLM judge model name (empty: none).")
    )
    judge_base_url: str = field(
        default="",
        metadata=_env("CONTEXTGEN_JUDGE_BASE_URL", "OpenAI-compatible base URL for the judge."),
    )
    accept_threshold: float = field(
        default=0.7,
        metadata=_env(
            "CONTEXTGEN_ACCEPT_THRESHOLD", "Judge score to accept, 0..1.", bounds=(0.0, 1.0)
        ),
    )
    # Search.
    search_provider: Literal["auto", "tavily", "local", "none"] = field(
        default="auto",
        metadata=_env(
            "CONTEXTGEN_SEARCH", "auto: Tavily when TAVILY_API_KEY is set, else the local corpus."
        ),
    )
    tavily_base_url: str = field(
        default="",
        metadata=_env("TAVILY_API_BASE_URL", "Tavily API base URL (empty: Tavily's own)."),
    )
    max_results_per_query: int = field(
        default=3,
        metadata=_env(
            "CONTEXTGEN_MAX_RESULTS", "Search results kept per query.", per_run=True, bounds=(1, 20)
        ),
    )
    # Generator.
    generator_model: str = field(
        default="Qwen/Qwen-Image",
        metadata=_env(
            "CONTEXTGEN_GENERATOR",
            "Diffusers model id or local folder, or the images API model ('none': skip).",
        ),
    )
    edit_model: str = field(
        default="",
        metadata=_env("CONTEXTGEN_EDIT_MODEL", "Image-edit model, e.g. Qwen/Qwen-Image-Edit-2509."),
    )
    generator_base_url: str = field(
        default="",
        metadata=_env(
            "CONTEXTGEN_GENERATOR_BASE_URL",
            "OpenAI images API server, e.g. http://localhost:8000/v1 (empty: diffusers here).",
        ),
    )
    edit_base_url: str = field(
        default="",
        metadata=_env(
            "CONTEXTGEN_EDIT_BASE_URL", "Images API server for edits (empty: the generator's)."
        ),
    )
    generator_timeout: float = field(
        default=300.0,
        metadata=_env("CONTEXTGEN_GENERATOR_TIMEOUT", "Seconds to wait for an images API answer."),
    )
    device: str = field(
        default="auto", metadata=_env("CONTEXTGEN_DEVICE", "auto, cuda, cuda:1, mps or cpu.")
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="auto", metadata=_env("CONTEXTGEN_DTYPE", "auto: bfloat16 on CUDA, else float32.")
    )
    steps: int = field(
        default=30, metadata=_env("CONTEXTGEN_STEPS", "Denoising steps.", bounds=(1, 1000))
    )
    width: int = field(
        default=1024, metadata=_env("CONTEXTGEN_WIDTH", "Image width in pixels.", bounds=(16, 8192))
    )
    height: int = field(
        default=1024,
        metadata=_env("CONTEXTGEN_HEIGHT", "Image height in pixels.", bounds=(16, 8192)),
    )
    seed: int = field(
        default=0,
        metadata=_env(
            "CONTEXTGEN_SEED", "Seed of the first round.", per_run=True, bounds=(0, 2**32 - 1)
        ),
    )
    offload: bool = field(
        default=False,
        metadata=_env("CONTEXTGEN_OFFLOAD", "CPU offload of the pipeline (low VRAM)."),
    )
    # Loop, memory, output.
    max_rounds: int = field(
        default=3,
        metadata=_env(
            "CONTEXTGEN_MAX_ROUNDS",
            "Generate-and-judge rounds at most.",
            per_run=True,
            bounds=(1, 10),
        ),
    )
    candidates: int = field(
        default=1,
        metadata=_env(
            "CONTEXTGEN_CANDIDATES",
            "Images per round; the judge scores each and the best goes on.",
            per_run=True,
            bounds=(1, 8),
        ),
    )
    data_dir: str = field(
        default=DEFAULT_DATA_DIR,
        metadata=_env("CONTEXTGEN_DATA_DIR", "Memory, corpus index and model cache folder."),
    )
    database_url: str = field(
        default="",
        metadata=_env(
            "CONTEXTGEN_DATABASE_URL",
            "PostgreSQL for checkpoints, e.g. postgresql://user@host:5432/db (password in "
            "PGPASSWORD or ~/.pgpass); empty: SQLite in data_dir.",
        ),
    )
    chroma_url: str = field(
        default="",
        metadata=_env(
            "CONTEXTGEN_CHROMA_URL",
            "Chroma server for memory and corpus, e.g. http://127.0.0.1:8000 (empty: data_dir).",
        ),
    )
    user_id: str = field(
        default="default",
        metadata=_env("CONTEXTGEN_USER", "Whose memories to use.", per_run=True),
    )
    interactive: bool = field(
        default=False,
        metadata=_env("CONTEXTGEN_INTERACTIVE", "May ask the user to clarify.", per_run=True),
    )
    output_dir: str = field(
        default="outputs",
        metadata=_env("CONTEXTGEN_OUTPUT_DIR", "Where images are written.", per_run=True),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            env_name = f.metadata.get("env")
            if env_name and getattr(self, f.name) == f.default and env_name in os.environ:
                setattr(self, f.name, _coerce(os.environ[env_name], f.default, env_name))
            else:  # values from Studio or the SDK may come as text ("3", "no")
                setattr(self, f.name, _coerce(getattr(self, f.name), f.default, f.name))
        for name, choices in _choices().items():
            if getattr(self, name) not in choices:
                env_name = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise ValueError(
                    f"{name} ({env_name}) must be one of {', '.join(choices)}, "
                    f"not {getattr(self, name)!r}."
                )
        for f in fields(self):
            bounds = f.metadata.get("bounds")
            value = getattr(self, f.name)
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise ValueError(
                    f"{f.name} ({f.metadata['env']}) must be between {bounds[0]} and "
                    f"{bounds[1]}, not {value}."
                )

    @property
    def backend_key(self) -> tuple:
        """The settings that make backends; runs with equal keys share their backends."""
        return tuple(
            (f.name, getattr(self, f.name)) for f in fields(self) if not f.metadata.get("per_run")
        )

    @property
    def memory_dir(self) -> str:
        return os.path.join(self.data_dir, "memory")

    @property
    def corpus_dir(self) -> str:
        return os.path.join(self.data_dir, "corpus")

    @property
    def models_dir(self) -> str:
        return os.path.join(self.data_dir, "models")


@cache
def _choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of every `Literal` field."""
    hints = get_type_hints(Context)
    return {
        name: get_args(hint) for name, hint in hints.items() if get_origin(hint) is Literal
    }


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def _coerce(value: object, default: object, label: str) -> object:
    """`value` as the type of the field's default: text such as "3" or "no" is parsed, and
    anything else of the wrong type is refused with a message naming `label`."""
    kind = type(default)
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if kind is bool and word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    if kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, str | int | float) else None
        except ValueError:
            number = None
        if number is not None and (kind is float or number.is_integer()):
            return kind(number)
    wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
    raise ValueError(f"{label} must be {wanted}, not {value!r}.")
