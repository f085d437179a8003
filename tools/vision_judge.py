"""The vision-language judge: looks at an image and says whether it shows what was asked."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from PIL import Image
from pydantic import BaseModel, Field

from contextgen.graphs.state import ImageArtifact, PromptPackage, Verdict
from contextgen.tools.structured_output import invoke_structured

VLM_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
JUDGE_INSTRUCTIONS = """You judge generated images. Compare the image with the request and the
facts it must show. Score 0-10 how well it matches. Classify the main problem:
- none: it matches;
- knowledge: the image shows the wrong thing because a fact was missing or wrong
  (then give search queries that would find the missing fact);
- prompt: the facts were right but the prompt described them badly;
- local_flaw: mostly right, with a local defect an image editor could fix.
List concrete issues, shortest first.
Reference images, when given, show what the real subject looks like: check that the
generated image shows the same kind of subject; it need not copy them."""


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

    def judge(
        self,
        request: str,
        package: PromptPackage,
        image: ImageArtifact,
        references: Sequence[str] = (),
    ) -> Verdict:
        """Look at `image` (beside the local `references`, if any) and return the verdict for
        its round and candidate."""
        facts = "\n".join(f"- {fact.statement}" for fact in package.facts) or "- (none)"
        text = (
            f"Request: {request}\nPrompt used: {package.prompt}\n"
            f"Facts the image must show:\n{facts}"
        )
        if references:
            text += (
                f"\nThe first image is the generated one; the {len(references)} after it are "
                "reference images of the subject."
            )
        content = [
            {"type": "text", "text": text},
            *(
                {"type": "image_url", "image_url": {"url": image_data_url(path)}}
                for path in (image.path, *references)
            ),
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
            candidate=image.candidate,
        )


def image_data_url(path: str) -> str:
    """A base64 data URL of an image file, as OpenAI-compatible VLMs accept it (formats they
    do not all take, such as BMP, are sent as PNG)."""
    mime = mimetypes.guess_type(path)[0] or "image/png"
    data = Path(path).read_bytes()
    if mime not in VLM_IMAGE_TYPES:
        with Image.open(BytesIO(data)) as image:
            buffer = BytesIO()
            image.save(buffer, format="PNG")
        mime, data = "image/png", buffer.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
