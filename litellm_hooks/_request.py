"""Build the core's ``RouteRequest`` from a proxy request: who asks, which session,
which tier they ask for.

A client names its session with the ``x-session-id`` header or
``metadata.session_id``, and asks for a tier with the ``x-tiered-router-tier``
header or ``metadata.tier``. The caller identities checked against
``access.allow_tier_request`` are the key alias, the team id and alias, and the
user id of the proxy key, in that order.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_tiered_router.core import JsonSchemaGate, RouteRequest

from ._backend import ChatPayload
from ._convert import messages_text

__all__ = ["SESSION_HEADERS", "TIER_HEADERS", "caller_identities", "route_request_from_proxy",
           "route_request_from_messages", "response_format_gates"]

SESSION_HEADERS = ("x-session-id", "x-tiered-router-session")
TIER_HEADERS = ("x-tiered-router-tier",)


def _headers(data: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    sources = [(data.get("proxy_server_request") or {}).get("headers"),
               (data.get("metadata") or {}).get("headers")]
    for headers in sources:
        if isinstance(headers, Mapping):
            for key, value in headers.items():
                found.setdefault(str(key).lower(), str(value))
    return found


def caller_identities(user_api_key_dict: Any) -> list[str]:
    ids = []
    for attr in ("key_alias", "team_id", "team_alias", "user_id"):
        value = getattr(user_api_key_dict, attr, None)
        if value:
            ids.append(str(value))
    return ids


def _pick_caller(identities: Sequence[str], allowed: Sequence[str]) -> str | None:
    """The identity the core checks: the first one the config allows, else the first."""
    for identity in identities:
        if identity in allowed:
            return identity
    return identities[0] if identities else None


def response_format_gates(params: Mapping[str, Any]) -> list[Any]:
    """A client asking for ``response_format: {type: json_schema}`` gets that schema as
    a gate for this request: an answer that does not match it escalates."""
    fmt = params.get("response_format")
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return []
    spec = fmt.get("json_schema") or {}
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return [JsonSchemaGate(dict(schema), name="response_format")] if isinstance(schema, Mapping) else []


def route_request_from_messages(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None, *,
                                session_id: str | None = None, tier: str | None = None, caller: str | None = None,
                                metadata: Mapping[str, Any] | None = None) -> RouteRequest:
    body = {"messages": list(messages), **dict(params or {})}
    return RouteRequest(text=messages_text(messages), payload=ChatPayload.from_body(body), session_id=session_id,
                        requested_tier=tier, caller=caller, gates=response_format_gates(body),
                        metadata={"integration": "litellm", **dict(metadata or {})})


def route_request_from_proxy(data: Mapping[str, Any], user_api_key_dict: Any, allowed: Sequence[str]) -> RouteRequest:
    headers = _headers(data)
    meta = data.get("metadata") or {}
    # The client's own metadata: the proxy nests what the client sent under "requester_metadata".
    client_meta = meta.get("requester_metadata") if isinstance(meta.get("requester_metadata"), Mapping) else meta
    session = next((headers[h] for h in SESSION_HEADERS if headers.get(h)), None) or client_meta.get("session_id")
    tier = next((headers[h] for h in TIER_HEADERS if headers.get(h)), None) or client_meta.get("tier")
    identities = caller_identities(user_api_key_dict)
    extra = {"key_alias": getattr(user_api_key_dict, "key_alias", None),
             "team_id": getattr(user_api_key_dict, "team_id", None),
             "proxy_model": data.get("model")}
    return route_request_from_messages(
        data.get("messages") or [], data, session_id=str(session) if session else None,
        tier=str(tier) if tier else None, caller=_pick_caller(identities, allowed),
        metadata={k: v for k, v in extra.items() if v})
