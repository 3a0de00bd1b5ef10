"""Structured output: strict-mode JSON schemas, the `response_format` that asks for them, and parsing the answer."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from inference.errors import InvalidModelOutput

M = TypeVar("M", bound=BaseModel)

_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")
# Models served without guided decoding (llama.cpp, Ollama) sometimes wrap JSON in a Markdown fence.
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` made strict-mode compatible: closed objects, every property required, no defaults."""
    out = copy.deepcopy(schema)
    _make_strict(out)
    return out


def _make_strict(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("default", None)
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            # Strict mode needs every property listed; optional ones are expressed as nullable instead.
            node["required"] = list(node["properties"])
        for value in node.values():
            _make_strict(value)
    elif isinstance(node, list):
        for item in node:
            _make_strict(item)


def schema_name(schema: dict[str, Any] | type[BaseModel]) -> str:
    """The json_schema name OpenAI-compatible servers accept (letters, digits, _ and -, at most 64)."""
    raw = schema.__name__ if isinstance(schema, type) else str(schema.get("title") or "response")
    return _NAME_OK.sub("_", raw)[:64] or "response"


def response_format_for(schema: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """The `response_format` asking for JSON matching `schema` (a pydantic model or a JSON schema dict).

    Never the removed `guided_json` extra field: current vLLM ignores it silently and the model answers free text.
    """
    raw = schema.model_json_schema() if isinstance(schema, type) else schema
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema), "schema": strict_json_schema(raw), "strict": True},
    }


def parse_model_output(text: str, model_cls: type[M], *, finish_reason: str | None = None) -> M:
    """Parse and validate the model's JSON answer; raise InvalidModelOutput with the raw text when it is unusable."""
    if finish_reason == "length":
        raise InvalidModelOutput(
            "The model's answer was cut off before it was complete.",
            raw=text,
            detail="finish_reason=length: raise max_tokens (BASTION_MODEL__MAX_TOKENS) or shorten the prompt",
        )
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidModelOutput("The model did not answer with valid JSON.", raw=text, detail=str(exc)) from None
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise InvalidModelOutput(
            f"The model's answer does not match the expected {model_cls.__name__} format.",
            raw=text,
            detail=problems,
        ) from None
