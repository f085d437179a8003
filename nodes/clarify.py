"""Ask the user to settle an ambiguity that no search can settle (interactive runs only)."""

from __future__ import annotations

from langgraph.types import interrupt

from contextgen.graphs.state import AgentState


def clarify(state: AgentState) -> dict:
    """Pause the run with the question; resume with `Command(resume="the answer")`."""
    intent = state["intent"]
    question = intent.clarifying_question or f"What exactly do you mean by '{intent.subject}'?"
    answer = interrupt({"question": question, "request": state["request"]})
    return {"clarification": str(answer).strip()}
