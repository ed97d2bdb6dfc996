"""Every error the router raises, under one base.

    RouterError
    ├── ConfigError              a router config that cannot be used (carries the key path)
    ├── UnknownTierError         a tier name that the ladder does not have
    ├── PricingError             a model id with no price and no override
    ├── TierCallError            one call to one tier failed (carries tier and model id)
    │   ├── TransportError       throttled, 5xx, timeout, cut stream: the call never answered
    │   ├── MalformedReplyError  the tier answered, but not in a shape we can read
    │   └── ModelLimitError      this model refused this request (over its context window, not
    │                            enabled here): a larger tier may take it
    ├── GateFailed               a quality gate rejected an answer (never raised to users alone)
    ├── TierNotAllowedError      a caller asked for a tier its key may not use
    ├── UnknownTierRequestError  a caller asked for a tier the ladder does not have (the caller's error)
    ├── TelemetryError           a telemetry store that cannot be read (missing DB, bad file)
    ├── EmulatorError            (emulator/_errors.py) the local Bedrock emulator cannot do it
    └── LadderExhaustedError     every allowed attempt failed; an ExceptionGroup of them all

Errors about one call carry ``tier`` and ``model_id`` so a log line or a human
queue can tell which rung failed without parsing the message.
"""

from __future__ import annotations

from typing import Any, Sequence

from .pricing import Usage

__all__ = [
    "RouterError",
    "ConfigError",
    "UnknownTierError",
    "PricingError",
    "TierCallError",
    "TransportError",
    "MalformedReplyError",
    "ModelLimitError",
    "GateFailed",
    "TierNotAllowedError",
    "UnknownTierRequestError",
    "TelemetryError",
    "LadderExhaustedError",
]


class RouterError(Exception):
    """Base of every error raised by langchain-tiered-router."""


class ConfigError(RouterError):
    """A router config that cannot be used; ``path`` names the key (``policy.kind``)."""

    def __init__(self, message: str, *, path: str = "", source: str | None = None):
        self.path = path
        self.source = source
        self.detail = message
        where = f"{source}: " if source else ""
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{message}")


    def in_file(self, source: str) -> "ConfigError":
        """The same error, naming the config file it came from (when it names none)."""
        if self.source is not None or type(self).__init__ is not ConfigError.__init__:
            return self
        error = type(self)(self.detail, path=self.path, source=source)
        error.__cause__ = self.__cause__
        return error


class UnknownTierError(ConfigError):
    """A tier name that the ladder does not have."""


class PricingError(ConfigError):
    """A model id that the cost map does not price and no override prices."""


class TierCallError(RouterError):
    """One call to one tier failed.

    ``delivered``: this failure has already reached the caller (a proxy that made the
    call itself answered with it), so, like a stream cut after output went out, it is
    neither retried nor escalated."""

    delivered = False

    def __init__(self, message: str, *, tier: str, model_id: str, cause: BaseException | None = None):
        self.tier = tier
        self.model_id = model_id
        self.cause = cause
        super().__init__(f"[{tier} / {model_id}] {message}")


class TransportError(TierCallError):
    """The tier never answered: throttling, a 5xx, a timeout, a stream cut short.

    ``kind`` is one of ``throttled``, ``server_error``, ``timeout``, ``stream_cut``,
    ``connection``, ``other``; the retry policy reads it. ``failed_over``: a backend that
    retries by itself gave the tier up and called the next one (LiteLLM's fallbacks on
    the proxy's own call), so no retry policy lists it: the engine escalates.
    ``calls``: how many failed calls of the tier it stands for (such a backend's tries),
    each counted by the circuit breaker as one of the engine's own would be; 0 when none
    of them says the tier is unwell (the caller's own error or timeout).
    """

    calls = 1
    # ``False``: the call never reached the tier (still queued, or its connection never
    # opened), so a ``timeout`` costs nothing; one that did runs on at Bedrock and is billed.
    reached_tier = True

    @property
    def billed_anyway(self) -> bool:
        """A call given up on at a timeout while Bedrock had it: it runs on and is billed."""
        return self.kind == "timeout" and self.reached_tier

    def __init__(self, message: str, *, tier: str, model_id: str, kind: str = "other",
                 cause: BaseException | None = None, retry_after_s: float | None = None):
        self.kind = kind
        self.retry_after_s = retry_after_s  # the server's Retry-After, when it sent one
        super().__init__(message, tier=tier, model_id=model_id, cause=cause)


class MalformedReplyError(TierCallError):
    """The tier answered with a body we cannot read. ``usage``: the tokens the reply
    said it used, when that part was readable: Bedrock bills them, so the attempt is."""

    def __init__(self, message: str, *, tier: str, model_id: str, cause: BaseException | None = None,
                 usage: Usage | None = None):
        self.usage = usage
        super().__init__(message, tier=tier, model_id=model_id, cause=cause)


class ModelLimitError(TierCallError):
    """This tier's model refused this request, where another model may not: ``kind`` is
    ``context_window`` (the prompt is over its window), ``model_unavailable`` (not
    enabled for the account or region), ``unsupported_input`` (input this model cannot
    read: an image or document block, tools, a system prompt) or ``validation`` (another
    4xx about the input).
    ``retry.escalate_on`` says which kinds escalate."""

    def __init__(self, message: str, *, tier: str, model_id: str, kind: str = "validation",
                 cause: BaseException | None = None):
        self.kind = kind
        super().__init__(message, tier=tier, model_id=model_id, cause=cause)


class GateFailed(RouterError):
    """A quality gate rejected one tier's answer."""

    def __init__(self, reason: str, *, tier: str, model_id: str, gate: str = ""):
        self.reason = reason
        self.tier = tier
        self.model_id = model_id
        self.gate = gate
        super().__init__(f"[{tier} / {model_id}] gate {gate or '?'} failed: {reason}")


class TierNotAllowedError(RouterError):
    """A caller asked for a tier that its key or team may not request."""

    def __init__(self, message: str, *, tier: str, caller: str | None = None):
        self.tier = tier
        self.caller = caller
        super().__init__(message)


class UnknownTierRequestError(RouterError):
    """A caller asked for a tier by a name the ladder does not have (names are case-sensitive).

    The caller's mistake, not the config's: the proxy answers 400 with the ladder's names.
    """

    def __init__(self, tier: str, tiers: Sequence[str]):
        self.tier = tier
        self.tiers = list(tiers)
        close = [t for t in self.tiers if t.lower() == tier.lower()]
        hint = f" (did you mean {close[0]!r}? names are case-sensitive)" if close else ""
        super().__init__(f"unknown tier {tier[:80]!r} requested{hint}; the ladder has {', '.join(self.tiers)}")


class TelemetryError(RouterError):
    """A telemetry store or file that cannot be read (missing database, bad line)."""


class LadderExhaustedError(RouterError, ExceptionGroup):
    """Every attempt failed and the config says ``on_exhausted: raise``.

    It is an ``ExceptionGroup`` holding one exception per attempt (``GateFailed`` or a
    ``TierCallError``), so ``except*`` works, and carries the routing ``result``
    (attempts, costs) for a human queue.
    """

    def __new__(cls, message: str, exceptions: Sequence[Exception], result: Any = None):
        self = super().__new__(cls, message, list(exceptions))
        self.result = result
        return self

    def __init__(self, message: str, exceptions: Sequence[Exception], result: Any = None):
        super().__init__(message, list(exceptions))
        self.result = result

    def derive(self, excs: Sequence[Exception]) -> "LadderExhaustedError":
        return LadderExhaustedError(self.message, excs, self.result)
