"""A LiteLLM callback for the tests: writes each call's standard logging payload to a file,
so a test can check what LiteLLM's own logs and callbacks see of the routing."""

from __future__ import annotations

import json
import os

from litellm.integrations.custom_logger import CustomLogger


class PayloadFile(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        payload = kwargs.get("standard_logging_object") or {}
        line = {"model_group": payload.get("model_group"), "model": payload.get("model"),
                "response_cost": payload.get("response_cost"),
                "spend_logs_metadata": (payload.get("metadata") or {}).get("spend_logs_metadata")}
        with open(os.environ["TIERED_TEST_PAYLOADS"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=str) + "\n")


instance = PayloadFile()
