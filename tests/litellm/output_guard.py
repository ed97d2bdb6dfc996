"""An operator's output guardrail, loaded by a test proxy (``callbacks``): digits in the
answer to a prompt that says "mask my answer" become ``#``, in whole responses and in
streamed chunks. It must mask the answer the client gets, not a tier's gate-failed one."""

from __future__ import annotations

import re
from typing import Any, AsyncIterator

from litellm.integrations.custom_logger import CustomLogger


def _wanted(data: Any) -> bool:
    messages = data.get("messages") if isinstance(data, dict) else None
    return any("mask my answer" in str(m.get("content")) for m in messages or [] if isinstance(m, dict))


class OutputMask(CustomLogger):
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        if _wanted(data):
            for choice in getattr(response, "choices", None) or []:
                message = getattr(choice, "message", None)
                if message is not None and isinstance(message.content, str):
                    message.content = re.sub(r"\d", "#", message.content)
        return response

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncIterator[Any]:
        wanted = _wanted(request_data)
        async for chunk in response:
            for choice in (getattr(chunk, "choices", None) or []) if wanted else []:
                delta = getattr(choice, "delta", None)
                if delta is not None and isinstance(getattr(delta, "content", None), str):
                    delta.content = re.sub(r"\d", "#", delta.content)
            yield chunk


mask = OutputMask()
