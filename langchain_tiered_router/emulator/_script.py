"""What the emulator answers, per model id: the script, typed and round-trippable.

A script is loaded in one place (``EmulatorScript.from_file`` / ``from_dict``); a bad
key is reported as a ``ScriptError`` whose ``path`` names it (``models.<id>.rules.0``).
Example::

    models:
      amazon.nova-micro-v1:0:
        rules:                                  # first match wins (re.search on the
          - match: "invoice"                    # text of the last user message)
            answer: '{"total": "twelve"}'
          - match: "weather"
            tool_use: {name: get_weather, input: {city: Paris}}
        default: "I am the cheap model."
        replay: recorded.jsonl                  # relative to the script file
        replay_key: cheap                       # which outcome of each record to use
    default_answer: "OK"
    strict: false
    prompt_routers:
      "arn:aws:bedrock:us-east-1:123456789012:prompt-router/abc":
        models: [amazon.nova-micro-v1:0, amazon.nova-pro-v1:0]
        rule: length                            # or first / last
        threshold_chars: 200
        routes:                                 # checked before the rule
          - {match: "contract", model: amazon.nova-pro-v1:0}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ._errors import ScriptError

__all__ = ["EmulatorScript", "ModelScript", "PromptRouterScript", "RouteRule", "Rule", "ToolUseAnswer"]


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolUseAnswer(_Strict):
    """Answer with a call to this tool instead of text."""

    name: str = Field(min_length=1, description="Tool name, as the request declared it.")
    input: dict[str, Any] = Field(default_factory=dict, description="The tool arguments.")


class Rule(_Strict):
    """If ``match`` is found in the last user message, answer with ``answer`` or ``tool_use``."""

    match: str = Field(description="Regular expression, searched (re.search) in the text.")
    answer: str | None = Field(default=None, description="Text to answer with.")
    tool_use: ToolUseAnswer | None = Field(default=None, description="Tool call to answer with.")

    _check = field_validator("match")(_check_regex)

    @model_validator(mode="after")
    def _one_answer(self) -> "Rule":
        if (self.answer is None) == (self.tool_use is None):
            raise ValueError("a rule needs exactly one of 'answer' or 'tool_use'")
        return self


class ModelScript(_Strict):
    """How one model id answers."""

    rules: list[Rule] = Field(default_factory=list, description="Tried in order; first match wins.")
    default: str | None = Field(default=None, description="Text when nothing else applies.")
    replay: Path | None = Field(
        default=None, description="JSONL of recorded outcomes, looked up by prompt text first.")
    replay_key: str | None = Field(
        default=None, description="Outcome key (tier name or model id) in each record; "
                                  "defaults to this model id.")
    latency_s: float = Field(default=0.0, ge=0, description="Seconds before each answer: the model's own "
                                                          "latency (load tests keep requests in flight).")


class RouteRule(_Strict):
    """A prompt-router rule: send prompts matching ``match`` to ``model``."""

    match: str = Field(description="Regular expression, searched in the last user message.")
    model: str = Field(description="Model id to route to; one of the router's models.")

    _check = field_validator("match")(_check_regex)


class PromptRouterScript(_Strict):
    """A prompt router: which model ids it may pick and how it picks."""

    models: list[str] = Field(min_length=1, description="Candidates, cheapest first.")
    rule: Literal["length", "first", "last"] = Field(
        default="length",
        description="length: first model if the prompt is shorter than threshold_chars, "
                    "else the last; first/last: always that model.")
    threshold_chars: int = Field(default=200, ge=0, description="Cut-off for rule 'length'.")
    routes: list[RouteRule] = Field(default_factory=list, description="Checked before 'rule'.")

    @model_validator(mode="after")
    def _routes_target_models(self) -> "PromptRouterScript":
        for route in self.routes:
            if route.model not in self.models:
                raise ValueError(f"route model {route.model!r} is not one of models {self.models}")
        return self


class EmulatorScript(_Strict):
    """The whole script: per-model answers, defaults, prompt routers."""

    models: dict[str, ModelScript] = Field(default_factory=dict, description="Keyed by model id.")
    default_answer: str = Field(default="OK", description="Answer of model ids not in 'models'.")
    strict: bool = Field(
        default=False, description="Unknown model ids get a ValidationException, as on Bedrock.")
    prompt_routers: dict[str, PromptRouterScript] = Field(
        default_factory=dict, description="Keyed by prompt-router ARN.")

    _source_dir: Path | None = PrivateAttr(default=None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str | Path | None = None) -> "EmulatorScript":
        """Validate a plain mapping; ``source`` (a file) anchors relative replay paths."""
        try:
            script = cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(part) for part in first["loc"])
            raise ScriptError(first["msg"], path=path, source=str(source) if source else None) from exc
        if source is not None:
            script._source_dir = Path(source).resolve().parent
        return script

    @classmethod
    def from_file(cls, path: str | Path) -> "EmulatorScript":
        """Load a YAML or JSON script file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ScriptError(f"cannot read script: {exc}", source=str(path)) from exc
        if data is not None and not isinstance(data, dict):
            raise ScriptError("a script must be a mapping at the top level", source=str(path))
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``from_dict`` reads back (defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def resolve_path(self, path: Path) -> Path:
        """A path from the script, resolved against the script file's folder (else the cwd)."""
        if path.is_absolute() or self._source_dir is None:
            return path
        return self._source_dir / path
