"""Who may ask for a tier by name: typed principals, checked against the caller's
authenticated identities.

A principal is ``kind:value``: ``team:ops``, ``team_alias:Ops``, ``key_alias:ci-key``,
``user:alice``, ``key:<hashed key>``, or ``*`` (every caller). Kinds never match
each other, so a key whose *alias* is ``ops`` is not the *team* ``ops``. The
integrations fill ``RouteRequest.principals`` from what authenticated the caller (the
LiteLLM proxy's key, team and user); a bare caller name given in code is a user id.

Session pins are scoped to the same identities (``pin_scope``), so one caller's pin
never starts another caller's request.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from .errors import ConfigError

__all__ = ["PRINCIPAL_KINDS", "ANYONE", "parse_principal", "caller_principals", "may_request", "pin_scope",
           "pin_key"]

PRINCIPAL_KINDS = ("team", "team_alias", "key_alias", "user", "key")
ANYONE = "*"


def parse_principal(entry: str, *, path: str = "") -> str:
    """``entry`` if it is a typed principal (or ``*``); a ``ConfigError`` naming the typed forms otherwise."""
    if entry == ANYONE:
        return entry
    kind, sep, value = entry.partition(":")
    if sep and kind in PRINCIPAL_KINDS and value.strip() and (value != value.strip() or value.strip() == ANYONE):
        # "team: ops" never matches the caller "team:ops"; "user:*" only a caller named "*"
        raise ConfigError(f"principal {entry!r} " + ("has spaces around its name: write "
                          f"'{kind}:{value.strip()}'" if value != value.strip() else
                          "is no wildcard: '*' alone lets every caller ask, a kind's '*' matches no one"),
                          path=path)
    if not sep or kind not in PRINCIPAL_KINDS or not value.strip():
        forms = ", ".join(f"'{k}:{value or entry}'" for k in ("team", "key_alias", "user"))
        raise ConfigError(f"principal {entry!r} is not typed; write one of {forms} (or '*' for every caller); "
                          f"kinds: {', '.join(PRINCIPAL_KINDS)}", path=path)
    return entry


def caller_principals(caller: str | Sequence[str] | None) -> tuple[str, ...]:
    """The principals of a caller named in code: typed entries as they are, a bare name as ``user:<name>``."""
    if not caller:
        return ()
    names = [caller] if isinstance(caller, str) else list(caller)
    out = []
    for name in names:
        name = str(name)
        kind, sep, value = name.partition(":")
        out.append(name if sep and kind in PRINCIPAL_KINDS and value else f"user:{name}")
    return tuple(dict.fromkeys(out))


def may_request(allowed: Iterable[str], principals: Iterable[str]) -> bool:
    """True when ``*`` is allowed or one of the caller's principals is."""
    allowed = set(allowed)
    return ANYONE in allowed or any(p in allowed for p in principals)


def pin_scope(principals: Iterable[str]) -> str:
    """The caller a session pin belongs to: all its principals, in a stable order."""
    return "\n".join(sorted(set(principals)))


def pin_key(session_id: str, principals: Iterable[str]) -> str:
    """The pin store key of ``session_id`` for this caller: the same session id sent by
    another caller is another key. The scope is hashed so no identity sits in the store."""
    digest = hashlib.sha256(pin_scope(principals).encode()).hexdigest()[:16]
    return f"{digest}:{session_id}"
