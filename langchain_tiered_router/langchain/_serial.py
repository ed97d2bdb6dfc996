"""LangChain's serialisation (``dumps``/``loads``) of ``TieredChatBedrock``.

The model is dumped as a constructor, as langchain-aws dumps ``ChatBedrockConverse``:
its settings, the router config inline (the keys that were set, as a YAML file holds
them; a config read from a file is dumped, not its path), and its AWS credentials as
LangChain secrets (``lc_secrets``): a name ``loads`` looks up, never the value.

A config value a dump must not or cannot carry is written where it stands as LangChain
writes any value it cannot serialise, a ``not_implemented`` entry, whose ``repr`` here
says why: a password in a connection URL (a redis URL, a postgres DSN), a credential in
a tier's ``model_kwargs``, or an object set on the config after its validation. Then
``loads`` raises ``NotImplementedError`` showing that entry. Not an error from
``dumps``: LangChain dumps every model itself on its first call (the ``serialized``
its callbacks get), and a model that routes must not fail there.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from ..core.config import RouterConfig
from ..core.errors import ConfigError

__all__ = ["LC_NAMESPACE", "LC_SECRETS", "NotSerialisable", "dumped_config"]

# The package users import the model from, as langchain-aws names ``langchain_aws.chat_models``:
# a saved chain does not name the module the class is defined in.
LC_NAMESPACE = ["langchain_tiered_router", "langchain"]
# The model's credential fields, by the secret id ``loads`` looks each up by (``secrets_map=``,
# or the environment with ``secrets_from_env=True``): langchain-aws's ids.
LC_SECRETS = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
              "aws_session_token": "AWS_SESSION_TOKEN", "api_key": "AWS_BEARER_TOKEN_BEDROCK"}
# ChatBedrockConverse's credential settings, which a tier's model_kwargs could pass it
_CREDENTIAL_KWARGS = frozenset({*LC_SECRETS, "bedrock_api_key"})
# where a config names a server by a URL or DSN, which can carry a password
_URLS = (("endpoint_url",), ("circuit", "redis_url"), ("pinning", "redis_url"),
         ("batch", "endpoint_url"), ("batch", "s3_endpoint_url"))


class NotSerialisable:
    """Stands for a value the dump does not carry: LangChain writes it as a
    ``not_implemented`` entry whose ``repr`` is ``why``."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self) -> str:
        return self.why


def dumped_config(config: RouterConfig) -> Any:
    """The config as a dump carries it: its JSON form with a ``NotSerialisable`` in place
    of each value it must not or cannot carry, or one for the whole config when its JSON
    form does not load back equal."""
    holes: list[str] = []
    data = _jsonable(config, "", holes)
    if _hide_credentials(data) or holes:
        return data
    try:
        same = RouterConfig.from_dict(data) == config
    except ConfigError as exc:
        return NotSerialisable(f"the router config does not load back from its JSON form: {exc}")
    return data if same else NotSerialisable("the router config does not load back equal from its JSON form")


def _jsonable(value: Any, path: str, holes: list[str]) -> Any:
    """``value`` (a config, or a value in one) as JSON, keyed as a config file is, prices
    as strings. A config model gives the keys that were set or differ from their default
    (one changed in place, a gate appended to ``gates``): one left unset stays unset
    (``policy.max_escalations`` set or not is two behaviours). What is not JSON is a
    ``NotSerialisable`` naming its key path."""
    if isinstance(value, BaseModel):
        out = {}
        for name, field in type(value).model_fields.items():
            item, key = getattr(value, name), field.alias or name
            if name in value.model_fields_set or item != field.get_default(call_default_factory=True):
                out[key] = _jsonable(item, f"{path}.{key}" if path else key, holes)
        return out
    if isinstance(value, dict):
        return {k: _jsonable(v, f"{path}.{k}", holes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]", holes) for i, v in enumerate(value)]
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    holes.append(path)
    return NotSerialisable(f"the router config's {path} is a {type(value).__name__}, which no config file "
                           "can hold (set on the config after its validation)")


def _hide_credentials(data: dict[str, Any]) -> list[str]:
    """Put a ``NotSerialisable`` in place of each credential in ``data``; their key paths."""
    found: list[tuple[dict[str, Any], str, str, str]] = []  # (owner, key, key path, what to do instead)
    build = "build this model from its config"
    for keys in _URLS:
        owner = _at(data, *keys[:-1])
        if _has_password(owner.get(keys[-1])):
            found.append((owner, keys[-1], ".".join(keys), build))
    for i, sink in enumerate(_at(data, "telemetry").get("sinks") or []):
        if isinstance(sink, dict) and _has_password(sink.get("dsn")):
            found.append((sink, "dsn", f"telemetry.sinks[{i}].dsn",
                          f"leave it out and set $TIERED_ROUTER_POSTGRES_DSN, or {build}"))
    for i, tier in enumerate(data.get("tiers") or []):
        kwargs = _at(tier, "model_kwargs")
        for key in sorted(_CREDENTIAL_KWARGS.intersection(kwargs)):
            found.append((kwargs, key, f"tiers[{i}].model_kwargs.{key}",
                          "give credentials to TieredChatBedrock, which dumps them as LangChain secrets"))
    for owner, key, path, instead in found:
        owner[key] = NotSerialisable(f"the router config's {path} holds a credential, which a dump must not "
                                     f"carry: {instead}")
    return [path for _, _, path, _ in found]


def _at(data: Any, *keys: str) -> dict[str, Any]:
    """The mapping at ``keys`` in ``data``; an empty one where there is none."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _has_password(url: Any) -> bool:
    """A URL with a password (``redis://:pw@host``), or a DSN naming one (libpq's
    ``password=...``, a ``?password=`` query)."""
    if not isinstance(url, str):
        return False
    try:
        if urlsplit(url).password:
            return True
    except ValueError:  # not a URL (a libpq keyword DSN), or a malformed port
        pass
    return "password=" in url.lower().replace(" ", "")
