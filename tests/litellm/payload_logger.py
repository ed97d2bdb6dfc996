"""A LiteLLM callback for the tests: writes each call's standard logging payload to a file,
so a test can check what LiteLLM's own logs, callbacks and spend tracking see of the
routing: one line per logged event, success or failure, with the caller it is billed to."""

from __future__ import annotations

import json
import os

from litellm.integrations.custom_logger import CustomLogger

from ._proc import WARM_UP_MODEL  # the request a started proxy gets first: not the tests'


def _line(event: str, kwargs, payload) -> dict:
    metadata = payload.get("metadata") or {}
    call_metadata = ((kwargs.get("litellm_params") or {}).get("metadata") or {})
    return {"event": event, "model_group": payload.get("model_group"), "model": payload.get("model"),
            "response_cost": payload.get("response_cost"), "cost_finalized": payload.get("cost_finalized"),
            "cost_breakdown": payload.get("cost_breakdown"),
            "prompt_tokens": payload.get("prompt_tokens"), "completion_tokens": payload.get("completion_tokens"),
            "key_alias": metadata.get("user_api_key_alias"), "team_id": metadata.get("user_api_key_team_id"),
            "user_id": metadata.get("user_api_key_user_id"), "routing_decision": metadata.get("routing_decision"),
            "spend_logs_metadata": metadata.get("spend_logs_metadata"),
            "tier_call": call_metadata.get("tiered_router") if isinstance(call_metadata, dict) else None}


class PayloadFile(CustomLogger):
    def _write(self, line: dict) -> None:
        if WARM_UP_MODEL in (line["model"], line["model_group"]):
            return
        with open(os.environ["TIERED_TEST_PAYLOADS"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=str) + "\n")

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write(_line("success", kwargs, kwargs.get("standard_logging_object") or {}))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write(_line("failure", kwargs, kwargs.get("standard_logging_object") or {}))


instance = PayloadFile()
