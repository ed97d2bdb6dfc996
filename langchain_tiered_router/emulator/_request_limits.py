"""The ranges, lengths and patterns Bedrock checks on a Converse request, worded as it words them.

botocore does not check a shape's ``min``, ``max`` or ``pattern`` on the client; the service
does, before anything else, and answers ``ValidationException`` with every broken rule::

    2 validation errors detected: Value '1.5' at 'inferenceConfig.temperature' failed to
    satisfy constraint: Member must have value less than or equal to 1; Value 'get weather'
    at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint: ...

The limits are those of botocore's service model
(botocore/data/bedrock-runtime/2023-09-30/service-2.json), keyed by shape name. They are
written here, not read from botocore at start, because botocore is not a dependency of the
emulator; a test compares them with the installed botocore's model.
"""

from __future__ import annotations

import re
from typing import Any

from ._wire_errors import WireError

__all__ = ["LIMITS", "TOOL_NAME_PATTERN", "check_converse_request", "converse_violations"]

# shape name -> (min, max): a value's range for numbers, a length for strings and lists
LIMITS: dict[str, tuple[int | None, int | None]] = {
    "InferenceConfigurationMaxTokensInteger": (1, None),
    "InferenceConfigurationTemperatureFloat": (0, 1),
    "InferenceConfigurationTopPFloat": (0, 1),
    "InferenceConfigurationStopSequencesList": (0, 2500),
    "ConverseRequestAdditionalModelResponseFieldPathsList": (0, 10),  # ConverseStream's list: the same
    "ConverseRequestAdditionalModelResponseFieldPathsListMemberString": (1, 256),
    "ToolName": (1, 64),
}
TOOL_NAME_PATTERN = "[a-zA-Z0-9_-]+"  # ToolName's pattern, matched against the whole name

_INFERENCE = (("maxTokens", "InferenceConfigurationMaxTokensInteger", int),
              ("temperature", "InferenceConfigurationTemperatureFloat", float),
              ("topP", "InferenceConfigurationTopPFloat", float))


def _broken(value: Any, path: str, rule: str, *, show: bool = True) -> str:
    # Bedrock leaves the value out where the member is sensitive (a message's content)
    shown = f"Value '{value}' at" if show else "Value at"
    return f"{shown} '{path}' failed to satisfy constraint: Member must {rule}"


def _check_range(found: list[str], value: Any, path: str, shape: str, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # a wrong type is botocore's to refuse, not a range to check
    low, high = LIMITS[shape]
    if low is not None and value < low:
        found.append(_broken(kind(value), path, f"have value greater than or equal to {low}"))
    if high is not None and value > high:
        found.append(_broken(kind(value), path, f"have value less than or equal to {high}"))


def _check_length(found: list[str], value: Any, path: str, shape: str, *, show: bool = True) -> None:
    if not isinstance(value, (str, list)):
        return
    low, high = LIMITS[shape]
    shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else value  # as Java prints it
    if low is not None and len(value) < low:
        found.append(_broken(shown, path, f"have length greater than or equal to {low}", show=show))
    if high is not None and len(value) > high:
        found.append(_broken(shown, path, f"have length less than or equal to {high}", show=show))


def _check_tool_name(found: list[str], name: Any, path: str, *, show: bool = True) -> None:
    if not isinstance(name, str):
        return
    if re.fullmatch(TOOL_NAME_PATTERN, name) is None:
        found.append(_broken(name, path, f"satisfy regular expression pattern: {TOOL_NAME_PATTERN}", show=show))
    _check_length(found, name, path, "ToolName", show=show)


def converse_violations(body: dict[str, Any]) -> list[str]:
    """Each rule of the service model a Converse (or ConverseStream) body breaks, in Bedrock's words."""
    found: list[str] = []
    inference = body.get("inferenceConfig")
    if isinstance(inference, dict):
        for key, shape, kind in _INFERENCE:
            _check_range(found, inference.get(key), f"inferenceConfig.{key}", shape, kind)
        _check_length(found, inference.get("stopSequences"), "inferenceConfig.stopSequences",
                      "InferenceConfigurationStopSequencesList")
    paths = body.get("additionalModelResponseFieldPaths")
    _check_length(found, paths, "additionalModelResponseFieldPaths",
                  "ConverseRequestAdditionalModelResponseFieldPathsList")
    for index, path in enumerate(paths if isinstance(paths, list) else [], 1):
        _check_length(found, path, f"additionalModelResponseFieldPaths.{index}.member",
                      "ConverseRequestAdditionalModelResponseFieldPathsListMemberString")
    tool_config = body.get("toolConfig")
    if isinstance(tool_config, dict):
        for index, tool in enumerate(tool_config.get("tools") or [], 1):
            if isinstance(tool, dict) and isinstance(tool.get("toolSpec"), dict):
                _check_tool_name(found, tool["toolSpec"].get("name"), f"toolConfig.tools.{index}.member.toolSpec.name")
        choice = tool_config.get("toolChoice")
        if isinstance(choice, dict) and isinstance(choice.get("tool"), dict):
            _check_tool_name(found, choice["tool"].get("name"), "toolConfig.toolChoice.tool.name")
    messages = body.get("messages")
    for m_index, message in enumerate(messages if isinstance(messages, list) else [], 1):
        content = message.get("content") if isinstance(message, dict) else None
        for b_index, block in enumerate(content if isinstance(content, list) else [], 1):
            if isinstance(block, dict) and isinstance(block.get("toolUse"), dict):
                _check_tool_name(found, block["toolUse"].get("name"),
                                 f"messages.{m_index}.member.content.{b_index}.member.toolUse.name", show=False)
    return found


def check_converse_request(body: dict[str, Any]) -> None:
    """Raise Bedrock's ``ValidationException`` if the body breaks any rule of the service model."""
    found = converse_violations(body)
    if found:
        errors = "error" if len(found) == 1 else "errors"
        raise WireError.validation(f"{len(found)} validation {errors} detected: " + "; ".join(found))
