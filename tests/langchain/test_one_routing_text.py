"""A prompt in several content blocks is one text, the same whichever way it comes in:
LangChain messages, the proxy's OpenAI messages, and the rows ``eval`` calibrates on."""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tiered_router.analysis.eval.data import load_outcomes
from langchain_tiered_router.langchain._convert import request_text


def test_a_prompt_in_two_blocks_is_read_alike_by_every_way_in(tmp_path):
    """LangChain joined the blocks with "" (``BaseMessage.text``), the proxy and ``eval``
    with a newline: a model calibrated on the rows decided on another text than it was
    served (37 of 297 two-block requests on another tier in an outside test)."""
    from litellm_hooks._convert import messages_text

    blocks = [{"type": "text", "text": "Add 7 and 5."}, {"type": "image_url", "image_url": {"url": "x"}},
              {"type": "text", "text": "Answer as JSON."}]
    langchain = request_text([SystemMessage("be brief"), HumanMessage(content=blocks)])
    proxy = messages_text([{"role": "system", "content": "be brief"}, {"role": "user", "content": blocks}])
    row = {"messages": [{"role": "system", "content": "be brief"},
                        {"role": "user", "content": [{"text": "Add 7 and 5."}, {"text": "Answer as JSON."}]}],
           "outcomes": {"cheap": {"score": 1.0, "response": "12"}, "top": {"score": 1.0, "response": "12"}}}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (item,) = load_outcomes(path)
    assert langchain == proxy == item.prompt == "Add 7 and 5.\nAnswer as JSON."
