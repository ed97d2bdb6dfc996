"""The proxy's ``general_settings.custom_auth`` for the tests: two callers without a database.

LiteLLM's virtual keys need Postgres; custom auth is LiteLLM's own seam for telling
callers apart, and gives the hook the same ``UserAPIKeyAuth`` fields a virtual key would.
"""

from __future__ import annotations

from fastapi import HTTPException
from litellm.proxy._types import UserAPIKeyAuth

CALLERS = {
    "sk-ops": {"key_alias": "ops-key", "team_id": "ops-team", "user_id": "ops-user"},
    "sk-app": {"key_alias": "app-key", "team_id": "app-team", "user_id": "app-user"},
    # Look-alikes of the ops team: a key *aliased* ops-team in the app team, a *user* called ops-team.
    "sk-alias-lookalike": {"key_alias": "ops-team", "team_id": "app-team", "user_id": "mallory"},
    "sk-user-lookalike": {"key_alias": "mallory-key", "team_id": "app-team", "user_id": "ops-team"},
    # Per-model rate limits a key carries (LiteLLM's ``model_rpm_limit``): on a tiered model, on a tier.
    "sk-rpm-tiered": {"key_alias": "rpm-tiered-key", "team_id": "app-team", "user_id": "rpm-user",
                      "metadata": {"model_rpm_limit": {"tiered-open": 2}}},
    "sk-rpm-cheap": {"key_alias": "rpm-cheap-key", "team_id": "app-team", "user_id": "rpm-user",
                     "metadata": {"model_rpm_limit": {"cheap": 1}}},
}


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    caller = CALLERS.get(api_key)
    if caller is None:
        raise HTTPException(status_code=401, detail="unknown key")
    return UserAPIKeyAuth(api_key=api_key, **caller)
