"""`contextgen eval`: context closure and image quality on benchmark files, agent vs baseline.

`load_items` reads WISE / WISE-Verified, T2I-ReasonBench-style and plain JSONL files;
`EvalHarness` runs and scores items into a resumable results.jsonl; `write_reports` writes
summary.md and the test-time scaling plot.
"""

from contextgen.evaluation.closure import ClosureJudge, ClosureVerdict, keyword_hit
from contextgen.evaluation.harness import EvalHarness, EvalOptions, read_results
from contextgen.evaluation.image_score import ImageScorer, wiscore
from contextgen.evaluation.items import AnswerKey, EvalItem, load_items
from contextgen.evaluation.summary import summarize, write_reports

__all__ = [
    "AnswerKey", "ClosureJudge", "ClosureVerdict", "EvalHarness", "EvalItem", "EvalOptions",
    "ImageScorer", "keyword_hit", "load_items", "read_results", "summarize", "wiscore",
    "write_reports",
]
