"""Build the core's ``RouteRequest`` from what the proxy hands the ``tiered_router``
provider: the messages, the chat parameters, and the call's metadata (who asks, which
session, which tier they ask for).

A client names its session with the ``x-session-id`` header or
``metadata.session_id``, and asks for a tier with the ``x-tiered-router-tier``
header or ``metadata.tier``. The caller is who the proxy authenticated, as typed principals
checked against ``access.allow_tier_request``: ``key:<hashed key>``,
``key_alias:...``, ``team:...``, ``team_alias:...``, ``user:...``, read from the
``user_api_key_*`` fields the proxy writes into the call's metadata (it strips any
the client sent). A key *aliased* ``ops-team`` is ``key_alias:ops-team``, never
``team:ops-team``. Session pins are scoped to the same principals.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_tiered_router.core import RouteRequest
from langchain_tiered_router.core.access import caller_principals as caller_names
from langchain_tiered_router.core.gates import response_format_gates
from langchain_tiered_router.core.tool_calls import ForcedToolGate, forced_tool, tool_schemas

from ._backend import ChatPayload
from ._convert import messages_text

__all__ = ["SESSION_HEADERS", "TIER_HEADERS", "BadChatRequest", "asks_a_tier", "caller_principals", "check_chat_request",
           "route_request_from_call", "route_request_from_messages"]

SESSION_HEADERS = ("x-session-id", "x-tiered-router-session")
TIER_HEADERS = ("x-tiered-router-tier",)


# Principal kind -> the metadata field the proxy fills from the authenticated key.
_IDENTITY_FIELDS = (("key", "user_api_key_hash"), ("key_alias", "user_api_key_alias"),
                    ("team", "user_api_key_team_id"), ("team_alias", "user_api_key_team_alias"),
                    ("user", "user_api_key_user_id"))


def _headers(metadata: Mapping[str, Any]) -> dict[str, str]:
    headers = metadata.get("headers")
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}


def caller_principals(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The authenticated caller as typed principals, most specific first."""
    return tuple(f"{kind}:{metadata[key]}" for kind, key in _IDENTITY_FIELDS
                 if isinstance(metadata.get(key), str) and metadata[key])


def _display(principals: Sequence[str]) -> str | None:
    """Who asks, for logs and errors: the principals without the key hash."""
    shown = [p for p in principals if not p.startswith("key:")]
    return ", ".join(shown) or (principals[0][:16] if principals else None)


class BadChatRequest(ValueError):
    """A chat request no tier can answer as sent: the client's 400, found before any tier
    is called (sent on, it fails on every tier, and counts against their circuits)."""

    def __init__(self, message: str, *, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_FORMATS = frozenset({"text", "json_object", "json_schema"})


def check_chat_request(messages: Any, params: Mapping[str, Any]) -> None:
    """The shape of an OpenAI chat request, as far as the route depends on it."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise BadChatRequest("'messages' must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise BadChatRequest(f"messages[{i}] must be an object with 'role' and 'content'")
        if message.get("role") not in _ROLES:
            raise BadChatRequest(f"messages[{i}].role must be one of {', '.join(sorted(_ROLES))}, "
                                 f"not {message.get('role')!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str) and not (
                isinstance(content, list) and all(isinstance(part, Mapping) for part in content)):
            raise BadChatRequest(f"messages[{i}].content must be text or a list of content parts, "
                                 f"not {type(content).__name__}")
    fmt = params.get("response_format")
    if fmt is None:
        return
    if not isinstance(fmt, Mapping) or fmt.get("type") not in _FORMATS:
        raise BadChatRequest(f"response_format must be an object whose type is one of {', '.join(sorted(_FORMATS))}",
                             code="bad_response_format")
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise BadChatRequest("response_format json_schema needs json_schema.schema, a JSON Schema object",
                                 code="bad_response_format")


def route_request_from_messages(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None, *,
                                session_id: str | None = None, tier: str | None = None,
                                caller: str | Sequence[str] | None = None, principals: Sequence[str] = (),
                                metadata: Mapping[str, Any] | None = None) -> RouteRequest:
    """``caller`` is named in code (typed principals, or a bare user id); ``principals``
    are identities an integration authenticated, and win when given."""
    check_chat_request(messages, params or {})
    body = {"messages": list(messages), **dict(params or {})}
    principals = tuple(principals) or caller_names(caller)
    # a forced tool_choice ("required", a function's name): a text answer fails, as on the
    # LangChain side; a tier that dropped the parameter (drop_params) answered text and was served
    forces, tool = forced_tool(body.get("tool_choice")) if body.get("tools") else (False, None)
    forced = [ForcedToolGate(tool)] if forces else []
    return RouteRequest(text=messages_text(messages), payload=ChatPayload.from_body(body), session_id=session_id,
                        requested_tier=tier, caller=_display(principals), principals=principals,
                        gates=response_format_gates(body) + forced, tool_gates=forced,
                        tools=tool_schemas(body.get("tools")),
                        metadata={"integration": "litellm", **dict(metadata or {})})


def asks_a_tier(data: Mapping[str, Any]) -> bool:
    """Whether a proxy request names a tier (the ``x-tiered-router-tier`` header, or
    ``tier`` in the client's metadata), read as ``route_request_from_call`` reads it."""
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    client_meta = metadata.get("requester_metadata")
    client_meta = client_meta if isinstance(client_meta, Mapping) else metadata
    headers = _headers(metadata)
    return any(headers.get(h) for h in TIER_HEADERS) or bool(client_meta.get("tier"))


def route_request_from_call(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                            metadata: Mapping[str, Any] | None) -> RouteRequest:
    """The request as the ``tiered_router`` provider receives it from the proxy."""
    metadata = metadata or {}
    headers = _headers(metadata)
    # The client's own metadata: the proxy nests what the client sent under "requester_metadata".
    client_meta = metadata.get("requester_metadata")
    client_meta = client_meta if isinstance(client_meta, Mapping) else metadata
    session = next((headers[h] for h in SESSION_HEADERS if headers.get(h)), None) or client_meta.get("session_id")
    tier = next((headers[h] for h in TIER_HEADERS if headers.get(h)), None) or client_meta.get("tier")
    extra = {"key_alias": metadata.get("user_api_key_alias"), "team_id": metadata.get("user_api_key_team_id"),
             "proxy_model": metadata.get("model_group")}
    return route_request_from_messages(
        messages, params, session_id=str(session) if session else None, tier=str(tier) if tier else None,
        principals=caller_principals(metadata),
        metadata={k: v for k, v in extra.items() if v})
