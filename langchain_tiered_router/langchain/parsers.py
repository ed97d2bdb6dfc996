"""Gates as LangChain output parsers, and escalation by ``with_fallbacks``.

For users who route whole chains rather than single model calls:
``with_tier_fallbacks(prompt, parser, llm)`` builds
``prompt | cheap | parser`` with fallbacks ``prompt | mid | parser``, ... that take
over when the parser (a ``GateOutputParser``, or any parser) rejects an answer or the
tier fails in transport.

Limits, from ``RunnableWithFallbacks`` itself:
- when every chain fails it raises the FIRST error, not the last or a group (the
  router's ``LadderExhaustedError`` holds all of them);
- while streaming it can only fall back before the first chunk is emitted, so a
  parser that fails on the finished answer cannot escalate a stream;
- ``OutputParserException`` subclasses ``ValueError``: passing ``ValueError`` in
  ``exceptions_to_handle`` would also swallow programming errors;
- nothing is priced or recorded: no ``routing`` metadata, no telemetry, no pins.
  ``TieredChatBedrock`` does all of that for one model call.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import BaseOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from ..core.errors import TransportError
from ..core.gates import Gate, GateState, JsonSchemaGate, PydanticGate, safe_judge
from ..core.json_answer import structured_value
from ..core.tiers import Tier
from ..core.types import RouteRequest, TierAnswer
from ._convert import to_answer

__all__ = ["GateOutputParser", "escalation_chain", "with_tier_fallbacks", "transport_exceptions"]

_PARSER_TIER = Tier("output-parser", "unknown", None)


class GateOutputParser(BaseOutputParser[Any]):
    """Judges a reply with a core gate; raises ``OutputParserException`` when it fails.

    Returns the structured value for a ``JsonSchemaGate`` (the JSON) or a
    ``PydanticGate`` (the model instance), else the reply text. Gates that need the
    question or a grader call (``RuleGate`` reads an empty question here,
    ``SelfGradeGate`` cannot ask) belong in the router config instead.
    """

    gate: Any
    model_config = ConfigDict(arbitrary_types_allowed=True)

    def __init__(self, gate: Gate, **kwargs: Any):
        super().__init__(gate=gate, **kwargs)

    @property
    def _type(self) -> str:
        return "tiered_router_gate"

    def _judge(self, answer: TierAnswer) -> Any:
        verdict = safe_judge(self.gate, GateState(RouteRequest(text=""), answer, _PARSER_TIER))
        if not verdict.passed:
            raise OutputParserException(f"gate {verdict.gate or self.gate.name} failed: {verdict.reason}",
                                        llm_output=answer.text)
        if isinstance(self.gate, PydanticGate):
            return self.gate.model.model_validate(structured_value(answer, self.gate.source))
        if isinstance(self.gate, JsonSchemaGate):
            return structured_value(answer, self.gate.source)
        return answer.text

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        generation = result[0]
        if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
            return self._judge(to_answer(generation.message, "unknown"))
        return self._judge(TierAnswer(text=generation.text))

    def parse(self, text: str) -> Any:
        return self._judge(TierAnswer(text=text))


def transport_exceptions() -> tuple[type[BaseException], ...]:
    """What a raw Bedrock chat model raises when a tier did not answer (botocore errors,
    a cut stream) plus the core's ``TransportError``; used as fallback triggers."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (TransportError, ClientError, BotoCoreError, ConnectionError)


def escalation_chain(build: Callable[[Any], Runnable], tiers: Sequence[Any], *,
                     exceptions_to_handle: tuple[type[BaseException], ...] | None = None) -> Runnable:
    """``build(tiers[0]).with_fallbacks([build(t) for t in tiers[1:]])``.

    ``tiers`` are chat models, cheapest first (``TieredChatBedrock.tier_models.values()``).
    """
    models = list(tiers)
    if not models:
        raise ValueError("escalation_chain needs at least one tier")
    handled = exceptions_to_handle or (OutputParserException, *transport_exceptions())
    first, *rest = [build(model) for model in models]
    return first.with_fallbacks(rest, exceptions_to_handle=handled) if rest else first


def with_tier_fallbacks(prompt: Runnable, parser: Runnable, llm: Any, *,
                        exceptions_to_handle: tuple[type[BaseException], ...] | None = None) -> Runnable:
    """``prompt | cheap | parser``, falling back to the next tier on a parser or transport error.

    ``llm`` is a ``TieredChatBedrock`` (its tier models are used) or a list of chat models.
    """
    tiers = list(llm.tier_models.values()) if hasattr(llm, "tier_models") else list(llm)
    return escalation_chain(lambda model: prompt | model | parser, tiers, exceptions_to_handle=exceptions_to_handle)
