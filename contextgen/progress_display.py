"""Live progress on stderr: one line per node, a step bar while an image is denoised."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressDisplay:
    """Turns `run_agent` progress events into terminal lines."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.started = time.perf_counter()
        self.is_tty = stream.isatty()
        self._last_step_line = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        elapsed = f"[{time.perf_counter() - self.started:6.1f}s]"
        kind = event.get("event")
        if kind == "node_end":
            status = f"failed: {event['error']}" if event.get("error") else "done"
            self._line(f"{elapsed} {event['node']}: {status} ({event['seconds']:.1f}s)")
        elif kind == "progress" and "step" in event:
            self._step(elapsed, event)
        elif kind == "progress":
            self._line(f"{elapsed} {event.get('node', '?')}: {event.get('message', '')}")

    def _step(self, elapsed: str, event: dict[str, Any]) -> None:
        step, total = event["step"], event["total"]
        width = 24
        filled = int(width * step / max(total, 1))
        text = (
            f"{elapsed} {event['message']}: [{'#' * filled}{'.' * (width - filled)}] {step}/{total}"
        )
        if self.is_tty:
            self.stream.write("\r" + text + ("\n" if step >= total else ""))
            self.stream.flush()
        elif step >= total or time.perf_counter() - self._last_step_line > 5:
            self._last_step_line = time.perf_counter()
            self._line(text)

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
