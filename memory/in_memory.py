"""A memory kept in the process: recalls what it was given, records what it is told.

It never recalls what it records, so with nothing given it is "no memory": evaluation items
and benchmark runs cannot see each other. Tests read what was recorded (`runs`, `preferences`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from contextgen.graphs.state import Fact, Memory


class ListMemory:
    """Recalls the first `k` of `memories` (after `delay` seconds); records runs and preferences."""

    def __init__(self, memories: Sequence[Memory] = (), delay: float = 0.0):
        self.memories = list(memories)
        self.delay = delay
        self.runs: list[dict[str, Any]] = []
        self.preferences: list[str] = []

    def recall(self, user_id: str, query: str, k: int = 5) -> list[Memory]:
        """The given memories, in order, at most `k`."""
        if self.delay:
            time.sleep(self.delay)
        return self.memories[:k]

    def remember_run(
        self,
        user_id: str,
        request: str,
        prompt: str,
        facts: Sequence[Fact] = (),
        accepted: bool = False,
        score: float | None = None,
        image_path: str | None = None,
        subject: str = "",
    ) -> str:
        """Record a finished run; returns its id."""
        self.runs.append(
            {
                "user_id": user_id,
                "request": request,
                "prompt": prompt,
                "facts": list(facts),
                "accepted": accepted,
                "score": score,
                "image_path": image_path,
                "subject": subject,
            }
        )
        return f"run-{len(self.runs)}"

    def remember_preference(self, user_id: str, text: str) -> str:
        """Record a stated preference; returns its id."""
        self.preferences.append(text)
        return f"pref-{len(self.preferences)}"
