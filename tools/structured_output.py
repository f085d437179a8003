"""Ask a chat model for a pydantic object through a JSON schema, with one repair attempt.

`response_format` json_schema works on OpenAI, vLLM, Ollama and llama.cpp servers alike; small
models are held to the schema's `maxLength` bounds by the server's grammar.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from contextgen.tools.errors import ModelUnavailable

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class StructuredOutputError(RuntimeError):
    """The model did not produce valid output, even after one repair attempt."""


def response_format_for(schema: type[BaseModel]) -> dict:
    """The OpenAI `response_format` that holds a model to `schema`."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
    }


def parse_json_reply(text: str, schema: type[Model]) -> Model:
    """Parse a reply into `schema`, tolerating a Markdown code fence around the JSON."""
    return schema.model_validate_json(_FENCE.sub("", text.strip()))


def invoke_structured(
    model: BaseChatModel, schema: type[Model], messages: list[BaseMessage]
) -> Model:
    """Invoke `model` for a `schema` object; on invalid output retry once with the error."""
    bound = model.bind(response_format=response_format_for(schema))
    conversation = list(messages)
    for attempt in (1, 2):
        reply = _invoke(bound, conversation)
        text = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        try:
            return parse_json_reply(text, schema)
        except (ValidationError, ValueError) as error:
            logger.warning("%s reply invalid (attempt %d): %s", schema.__name__, attempt, error)
            conversation += [
                AIMessage(content=text),
                HumanMessage(
                    content="That reply is not valid JSON for the schema. Error:\n"
                    f"{str(error)[:800]}\nReply again with only the corrected JSON object."
                ),
            ]
    raise StructuredOutputError(
        f"The model gave no valid {schema.__name__} after a repair attempt."
    )


class ChoiceReply(BaseModel):
    """A reply that is one number: a model's pick among numbered options (subclasses bound it)."""

    choice: int


def invoke_choice(
    model: BaseChatModel, schema: type[ChoiceReply], instructions: str, message: str
) -> int | None:
    """The number `model` picks (held to `schema`'s bounds), or None when it gives no valid
    reply even after the repair attempt."""
    try:
        reply = invoke_structured(
            model, schema, [SystemMessage(content=instructions), HumanMessage(content=message)]
        )
    except StructuredOutputError as error:
        logger.info("no %s: %s", schema.__name__, error)
        return None
    return reply.choice


def _invoke(bound, conversation: list[BaseMessage]) -> BaseMessage:
    try:
        return bound.invoke(conversation)
    except Exception as error:  # connection, auth, server errors from any provider
        if _is_connection_problem(error):
            raise ModelUnavailable(
                f"The chat model cannot be reached ({type(error).__name__}). Check "
                "CONTEXTGEN_CHAT_BASE_URL / OPENAI_API_KEY, or unset both for the embedded model."
            ) from error
        raise


def _is_connection_problem(error: Exception) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names
        & {"APIConnectionError", "AuthenticationError", "ConnectError", "PermissionDeniedError"}
    )
