"""The vision-language judge: looks at an image and says whether it shows what was asked."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from contextgen.graphs.state import ImageArtifact, PromptPackage, Verdict
from contextgen.tools.structured_output import invoke_structured

JUDGE_INSTRUCTIONS = """You judge generated images. Compare the image with the request and the
facts it must show. Score 0-10 how well it matches. Classify the main problem:
- none: it matches;
- knowledge: the image shows the wrong thing because a fact was missing or wrong
  (then give search queries that would find the missing fact);
- prompt: the facts were right but the prompt described them badly;
- local_flaw: mostly right, with a local defect an image editor could fix.
List concrete issues, shortest first."""


class JudgeReply(BaseModel):
    """What the VLM returns."""

    score: int = Field(ge=0, le=10)
    problem: Literal["none", "knowledge", "prompt", "local_flaw"]
    issues: list[str] = Field(max_length=5)
    missing_knowledge: list[str] = Field(max_length=3)


class VisionJudge:
    """Scores an image against the request and its grounded prompt."""

    def __init__(self, model: BaseChatModel, accept_threshold: float = 0.7):
        self.model = model
        self.accept_threshold = accept_threshold

    def judge(self, request: str, package: PromptPackage, image: ImageArtifact) -> Verdict:
        """Look at `image` and return the verdict for its round."""
        facts = "\n".join(f"- {fact.statement}" for fact in package.facts) or "- (none)"
        content = [
            {
                "type": "text",
                "text": f"Request: {request}\nPrompt used: {package.prompt}\n"
                f"Facts the image must show:\n{facts}",
            },
            {"type": "image_url", "image_url": {"url": image_data_url(image.path)}},
        ]
        reply = invoke_structured(
            self.model,
            JudgeReply,
            [SystemMessage(content=JUDGE_INSTRUCTIONS), HumanMessage(content=content)],
        )
        score = reply.score / 10
        return Verdict(
            round=image.round,
            score=score,
            accepted=score >= self.accept_threshold,
            issues=reply.issues,
            problem=reply.problem,
            missing_knowledge=reply.missing_knowledge,
        )


def image_data_url(path: str) -> str:
    """A base64 data URL of an image file, as OpenAI-compatible VLMs accept it."""
    mime = mimetypes.guess_type(path)[0] or "image/png"
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:{mime};base64,{encoded}"
