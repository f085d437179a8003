"""Errors a backend raises when it cannot serve; each message says what to do."""


class BackendUnavailable(RuntimeError):
    """A backend cannot be reached or loaded. The run goes on without it and says so."""


class SearchUnavailable(BackendUnavailable):
    """The search provider cannot be reached (network, key, missing index)."""


class GeneratorUnavailable(BackendUnavailable):
    """No image generator can run (weights unreachable, out of memory, ...)."""


class ModelUnavailable(BackendUnavailable):
    """The chat model or VLM cannot be reached or started."""
