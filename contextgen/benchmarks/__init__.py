"""`contextgen bench`: orchestration overhead, parallel research, memory recall at scale, the
embedded LLM and generator reuse. Each benchmark module has `run(...) -> dict` (the JSON it
writes) and `describe(result) -> list[str]` (the lines it prints)."""

BENCHMARKS = ("overhead", "research", "memory", "llm", "generator")
