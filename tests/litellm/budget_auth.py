"""The proxy's ``general_settings.custom_auth`` for ``test_litellm_budget.py``: keys with a
``max_budget`` and no database.

LiteLLM's virtual keys live in Postgres (Prisma cannot fetch its engine offline). What its
budget enforcement reads is the ``UserAPIKeyAuth`` of the request and the key's spend
counter, both keyed by the hashed token: keeping one ``UserAPIKeyAuth`` per key in
LiteLLM's own ``user_api_key_cache`` (``token=hash_token(key)``, ``spend``, ``max_budget``)
gives its reservation, its cost callback and its common checks
(``custom_auth_run_common_checks``) the same object a virtual key would, so the budget is
enforced by LiteLLM, not by this module.
"""

from __future__ import annotations

from fastapi import HTTPException
from litellm.proxy._types import UserAPIKeyAuth, hash_token

MASTER_KEY = "sk-budget-master"
# A budget that one request on the frontier tier (about 7e-5 USD for "hello") nearly uses up,
# and that no request of these tests can exceed by itself (no request costs 1e-4 or more).
MAX_BUDGET = 0.0001
KEYS = {
    MASTER_KEY: {"key_alias": "budget-master", "user_id": "budget-admin"},
    "sk-budget-frontier": {"key_alias": "budget-frontier", "user_id": "budget-frontier-user",
                           "max_budget": MAX_BUDGET},
    "sk-budget-tiered": {"key_alias": "budget-tiered", "user_id": "budget-tiered-user", "max_budget": MAX_BUDGET},
    # Budgeted too, but far above what the cost test spends: it is never refused.
    "sk-budget-costs": {"key_alias": "budget-costs", "user_id": "budget-costs-user", "max_budget": 100.0},
}


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    """The key's ``UserAPIKeyAuth`` from LiteLLM's cache, put there on its first request:
    the same object on every request, so the spend LiteLLM accrues on it is kept."""
    from litellm.proxy.proxy_server import user_api_key_cache

    spec = KEYS.get(api_key)
    if spec is None:
        raise HTTPException(status_code=401, detail="unknown key")
    token = hash_token(api_key)
    auth = await user_api_key_cache.async_get_cache(key=token, model_type=UserAPIKeyAuth)
    if auth is None:
        auth = UserAPIKeyAuth(api_key=api_key, token=token, spend=0.0, **spec)
        await user_api_key_cache.async_set_cache(key=token, value=auth, ttl=3600)
    return auth
