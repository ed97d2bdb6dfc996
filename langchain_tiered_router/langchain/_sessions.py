"""The session a LangChain call belongs to, for session pinning.

A call names its session, most explicit first:

1. ``session_id=`` on the call, or ``metadata.session_id`` in its config;
2. ``configurable.session_id`` (what ``RunnableWithMessageHistory`` is keyed by);
3. ``configurable.thread_id`` (a LangGraph thread, with a checkpointer).

``configurable`` never reaches a chat model's ``_generate``: langchain-core's
``ensure_config`` copies only ``model`` and ``checkpoint_ns`` from it into the run's
metadata (``langchain_core/runnables/config.py``), and ``invoke`` passes the model only
callbacks, tags and metadata. So ``TieredChatBedrock``'s ``invoke``/``ainvoke``/``stream``/
``astream`` keep the call's config in ``RUN_CONFIG`` for the time of the call; a model
called some other way (``generate``) reads the config langchain-core set for the
runnable it runs inside (``var_child_runnable_config``), if any.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any, Mapping

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config

__all__ = ["RUN_CONFIG", "CONFIGURABLE_SESSION_KEYS", "call_session"]

RUN_CONFIG: ContextVar[RunnableConfig | None] = ContextVar("tiered_router_run_config", default=None)

# After an explicit session id, in this order.
CONFIGURABLE_SESSION_KEYS = ("session_id", "thread_id")


def _session_value(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        return None  # a session is named by a string, a number or a UUID, never by an object's repr
    text = str(value)
    return text if text.strip() else None


def call_session(explicit: Any, metadata: Mapping[str, Any]) -> str | None:
    """The session of the current call (see the module's docstring for the order), as
    text whichever way it came: a UUID given as ``session_id=`` reached the record as an
    object, which a SQLite sink could not store (the row was dropped) and ``json.dumps``
    of the routing metadata refused."""
    for value in (explicit, metadata.get("session_id")):
        session = _session_value(value)
        if session is not None:
            return session
    config = RUN_CONFIG.get() or var_child_runnable_config.get() or {}
    configurable = config.get("configurable") or {}
    for key in CONFIGURABLE_SESSION_KEYS:
        session = _session_value(configurable.get(key))
        if session is not None:
            return session
    return None
