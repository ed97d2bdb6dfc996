"""The LangChain callback handler records routed generations from any chain."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.errors import LadderExhaustedError
from langchain_tiered_router.core.telemetry import MemorySink, routing_dict
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest
from langchain_tiered_router.langchain.callbacks import TieredRouterCallbackHandler

from .conftest import answer


class _RoutedChat(BaseChatModel):
    """A chat model that routes with the core and reports routing the way TieredChatBedrock does."""

    router: Any
    backend: Any

    @property
    def _llm_type(self) -> str:
        return "routed-test"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = "\n".join(str(m.content) for m in messages)
        result = self.router.route(RouteRequest(text=text, metadata={"integration": "langchain"}), self.backend)
        message = AIMessage(content=result.answer.text, response_metadata={"routing": routing_dict(result)})
        return ChatResult(generations=[ChatGeneration(message=message)])


def _model(priced_config, on_exhausted="flag") -> _RoutedChat:
    priced_config["on_exhausted"] = on_exhausted
    backend = ScriptedBackend({"cheap": lambda r: answer("ok" if "easy" in r.text else "no", 40, 8),
                               "mid": answer("no", 40, 9), "frontier": lambda r: answer(
                                   "no" if "impossible" in r.text else "ok", 40, 10)})
    return _RoutedChat(router=build_router(priced_config, telemetry=False), backend=backend)


def test_handler_in_a_chain_writes_the_routing_record(priced_config):
    sink = MemorySink()
    handler = TieredRouterCallbackHandler(sink, store_text=True)
    chain = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{q}")]) | _model(
        priced_config) | RunnableLambda(lambda m: m.content)
    assert chain.invoke({"q": "easy one"}, config={"callbacks": [handler], "metadata": {"team": "a"}}) == "ok"
    assert chain.invoke({"q": "hard one"}, config={"callbacks": [handler]}) == "ok"
    easy, hard = sink.records
    assert (easy.tier, easy.escalated, easy.integration) == ("cheap", False, "langchain")
    assert (hard.tier, hard.escalated, [a["tier"] for a in hard.attempts]) == ("frontier", True,
                                                                               ["cheap", "mid", "frontier"])
    assert hard.cost_usd is not None and hard.baseline_model_id == "test.frontier-v1"
    # the last user turn, as the router's own record keeps it (it held the system prompt too)
    assert easy.prompt_text == "easy one" and easy.answer_text == "ok"
    assert easy.metadata.get("team") == "a"
    assert handler._runs == {}  # nothing left behind per run


async def test_handler_works_on_the_async_path_and_ignores_unrouted_models(priced_config):
    sink = MemorySink()
    handler = TieredRouterCallbackHandler(sink)
    model = _model(priced_config)
    await model.ainvoke("easy", config={"callbacks": [handler]})
    plain = RunnableLambda(lambda x: AIMessage(content="not routed"))
    plain.invoke("x", config={"callbacks": [handler]})
    assert len(sink.records) == 1 and sink.records[0].prompt_text is None


def test_a_failed_routed_call_is_recorded_from_the_error(priced_config):
    sink = MemorySink()
    handler = TieredRouterCallbackHandler(sink)
    model = _model(priced_config, on_exhausted="raise")
    try:
        model.invoke("impossible", config={"callbacks": [handler]})
    except LadderExhaustedError:
        pass
    else:
        raise AssertionError("expected the ladder to be exhausted")
    (record,) = sink.records
    assert record.tier is None and record.error and len(record.attempts) == 3


def test_handler_from_config_uses_the_configured_sinks(priced_config, tmp_path):
    from langchain_tiered_router.analysis.report import load_records

    priced_config["telemetry"]["sinks"] = [{"kind": "jsonl", "path": str(tmp_path / "cb.jsonl")}]
    handler = TieredRouterCallbackHandler.from_config(priced_config)
    _model(priced_config).invoke("easy", config={"callbacks": [handler]})
    handler.close()
    records, _ = load_records(tmp_path / "cb.jsonl")
    assert [r.tier for r in records] == ["cheap"]


def test_handler_with_tiered_chat_bedrock_on_the_emulator_and_no_duplicate_rows(priced_config, tmp_path):
    from langchain_tiered_router.analysis.report import load_records
    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock

    script = {"models": {"test.cheap-v1": {"rules": [{"match": "easy", "answer": "ok cheap"}], "default": "no"},
                         "test.mid-v1": {"default": "ok mid"}}}
    db = tmp_path / "lc.db"
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": str(db)}]
    with BedrockEmulator(script) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config)
        handler = TieredRouterCallbackHandler.from_config(priced_config)  # the same DB as the router's own sink
        memory = MemorySink()
        handler.sinks.sinks.append(memory)
        replies = [model.invoke(q, config={"callbacks": [handler]}) for q in ("easy one", "hard one")]
    handler.flush()
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    flush_all()
    for reply, record in zip(replies, memory.records):
        routing = reply.response_metadata["routing"]
        assert record.request_id == routing["request_id"] and record.tier == routing["tier"]
        assert record.cost_usd is not None and record.cost_usd == Decimal(str(routing["cost_usd"]))
    assert [r.tier for r in memory.records] == ["cheap", "mid"]
    rows, _ = load_records(db)
    assert sorted(r.request_id for r in rows) == sorted(r.request_id for r in memory.records)  # one row each


def test_runs_that_end_without_a_message_or_a_routing_error_are_recorded_once(priced_config):
    """A stream the consumer leaves (sync or async) and a caller's error end their run
    with neither a message nor an error carrying the routing: the router's own result is
    handed to the handler, so it writes what the router's observer writes."""
    import asyncio

    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock

    script = {"models": {"test.cheap-v1": {"default": "ok, a long enough answer to stream in several chunks"}}}
    with BedrockEmulator(script) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config, telemetry=False)
        sink = MemorySink()
        handler = TieredRouterCallbackHandler(sink)
        seen: list = []
        model._router.add_observer(lambda result, request, backend: seen.append(result.request_id))
        config = {"callbacks": [handler]}
        for chunk in model.stream("hi", config=config):
            break

        async def leave_early() -> None:
            stream = model.astream("hi", config=config)
            async for chunk in stream:
                break
            await stream.aclose()

        asyncio.run(leave_early())
        with pytest.raises(ValueError):
            model.invoke("hi", stop="X", config=config)  # a caller's error, after routing began
    assert len(seen) == 3 and [r.request_id for r in sink.records] == seen


def test_a_request_its_caller_ends_is_recorded_with_its_baseline_by_the_handler_too(priced_config):
    """A cancelled ``ainvoke`` (``asyncio.wait_for`` past a slow tier: Bedrock has the call
    and bills it) reaches no handler through LangChain: its ``agenerate`` is cancelled with
    the call, and calls no ``on_llm_error``. The handler wrote nothing, where the model's
    own recorder wrote the request. And a request its caller ended (that one, a stream
    left after its first chunk) was billed but had no baseline cost, so the report left
    its spend out of the savings."""
    import asyncio

    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock, failed_runs

    script = {"models": {"test.cheap-v1": {"default": "ok, a long enough answer to stream in several chunks"}}}
    with BedrockEmulator(script) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config, telemetry=False)
        sink = MemorySink()
        handler = TieredRouterCallbackHandler(sink)
        seen: list = []
        model._router.add_observer(lambda result, request, backend: seen.append(result))
        config = {"callbacks": [handler]}

        async def cancelled() -> None:
            emu.inject("slow", model_id="test.cheap-v1", times=1, seconds=1.0)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(model.ainvoke("wait for me", config=config), 0.3)

        asyncio.run(cancelled())
        live = TieredChatBedrock(config={**priced_config, "gates": []}, telemetry=False)  # streams as it comes
        live._router.add_observer(lambda result, request, backend: seen.append(result))
        for _ in live.stream("hi", config=config):
            break
    assert [r.request_id for r in seen] == [r.request_id for r in sink.records]
    wait, left = sink.records
    assert "CancelledError" in wait.error and "closed by the consumer" in left.error
    for record in (wait, left):
        assert record.cost_usd > 0 and record.baseline_cost_usd > record.cost_usd  # billed, set against frontier
        assert record.savings_usd == record.baseline_cost_usd - record.cost_usd
    assert failed_runs._waiting == {} and not failed_runs._results


def test_an_llm_cache_hit_writes_no_second_record(priced_config, monkeypatch):
    """A hit returns the cached message, routing metadata and all, though nothing was
    routed: an appending sink must not count its cost again, whether this handler wrote
    the record (same process) or another one did (a cache shared between processes)."""
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import set_llm_cache

    from langchain_tiered_router.langchain import callbacks

    sink, model = MemorySink(), _model(priced_config)
    handler = TieredRouterCallbackHandler(sink)
    set_llm_cache(InMemoryCache())
    try:
        first = model.invoke("easy one", config={"callbacks": [handler]})
        again = model.invoke("easy one", config={"callbacks": [handler]})
        assert again.response_metadata["routing"] == first.response_metadata["routing"]  # the cached message
        assert [r.request_id for r in sink.records] == [first.response_metadata["routing"]["request_id"]]
        monkeypatch.setattr(callbacks, "CLOCK_SLACK_S", 0.0)
        elsewhere = MemorySink()
        model.invoke("easy one", config={"callbacks": [TieredRouterCallbackHandler(elsewhere)]})
        assert elsewhere.records == []  # routed before this run began: a replay
        model.invoke("easy two", config={"callbacks": [TieredRouterCallbackHandler(elsewhere)]})
        assert [r.tier for r in elsewhere.records] == ["cheap"]  # a routed request is still written
    finally:
        set_llm_cache(None)


# -- the handler and telemetry.shadow, left streams, close ----------------------------------

_SHADOW_SCRIPT = {"models": {"test.cheap-v1": {"default": "ok cheap"}, "test.mid-v1": {"default": "ok mid"},
                             "test.frontier-v1": {"default": "ok frontier"}}}


def _shadow_rows(db) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT integration, tier, shadow_status, shadow_score IS NOT NULL, "
                            "shadow_cost_usd IS NOT NULL FROM routing_records ORDER BY ts").fetchall()


@pytest.mark.parametrize("model_telemetry", [True, False], ids=["model-records-too", "handler-records"])
def test_the_handlers_record_of_a_shadow_sampled_request_carries_the_shadow(priced_config, tmp_path,
                                                                              model_telemetry):
    """The model's own telemetry and the handler on one SQLite file, or (the README's setup)
    the model's telemetry off and the handler recording: each row has its shadow score and
    cost. Before, the handler's row, written at the run's end, won over the router's
    scored one (model-records-too), or no shadow ran at all (handler-records)."""
    from langchain_tiered_router.core.telemetry.recorder import flush_all
    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock

    db = tmp_path / "shadow.db"
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(db)}], "shadow": {"fraction": 1.0}}
    with BedrockEmulator(_SHADOW_SCRIPT) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config, telemetry=model_telemetry)
        handler = TieredRouterCallbackHandler.from_config(priced_config)
        chain = ChatPromptTemplate.from_template("say {x}") | model
        for i in range(3):
            chain.invoke({"x": f"hi {i}"}, config={"callbacks": [handler]})
        assert flush_all()
        # one shadow call per request, however many record it (both did, each billing one)
        assert [r.model_id for r in emu.requests].count("test.frontier-v1") == 3
    assert _shadow_rows(db) == [("langchain", "cheap", "done", True, True)] * 3


def test_with_the_model_and_the_handler_recording_a_request_is_shadowed_on_one_draw(priced_config, tmp_path):
    """At a fraction below 1 the handler drew again for requests the model's recorder had
    not sampled: about 2f - f^2 of them were shadowed, and the extra calls' scored rows
    lost to the model's unshadowed ones (27 baseline calls for 18 scored rows). One draw,
    the model's, decides; every shadow call paid ends in a scored row."""
    from langchain_tiered_router.core.telemetry.recorder import flush_all
    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock

    db = tmp_path / "shadow.db"
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(db)}], "shadow": {"fraction": 0.3}}
    with BedrockEmulator(_SHADOW_SCRIPT) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config)
        handler = TieredRouterCallbackHandler.from_config(priced_config)
        chain = ChatPromptTemplate.from_template("say {x}") | model
        for i in range(60):
            chain.invoke({"x": f"hi {i}"}, config={"callbacks": [handler]})
        assert handler.flush() and flush_all()
        shadow_calls = [r.model_id for r in emu.requests].count("test.frontier-v1")
    rows = _shadow_rows(db)
    assert len(rows) == 60 and 0 < shadow_calls < 60
    assert sum(status == "done" for _, _, status, _, _ in rows) == shadow_calls


def test_many_async_streams_left_at_once_are_each_recorded_and_leave_nothing_waiting(priced_config):
    """Each left stream also ends its ``tier:<name>`` attempt run with an error; the handler
    left a waiter for each of those, never served, and past 256 of them the real waiters
    and results were dropped: 400 left streams gave 128-200 records."""
    import asyncio

    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock, failed_runs

    script = {"models": {"test.cheap-v1": {"default": "ok, a long enough answer to stream in several chunks"}}}
    n = 300
    with BedrockEmulator(script) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config, telemetry=False)
        sink = MemorySink()
        handler = TieredRouterCallbackHandler(sink)
        routed: list[str] = []
        model._router.add_observer(lambda result, request, backend: routed.append(result.request_id))
        chain = ChatPromptTemplate.from_template("say {x}") | model

        async def leave(i: int) -> None:
            async for _ in chain.astream({"x": f"long answer {i}"}, config={"callbacks": [handler]}):
                break

        async def main() -> None:
            await asyncio.gather(*[leave(i) for i in range(n)])

        asyncio.run(main())
    assert len(routed) == n
    assert sorted(r.request_id for r in sink.records) == sorted(routed)
    assert failed_runs._waiting == {} and not failed_runs._results  # nothing left behind


def test_closing_a_handler_from_config_leaves_the_routers_writers_running(priced_config, tmp_path):
    """``from_config`` hands the handler the process's shared writers, which the router
    writes to too: closing the handler closed them, and from then on every request wrote
    its records inline (a slow span exporter on the request path)."""
    import logging
    import threading

    from langchain_tiered_router.core.telemetry.recorder import flush_all
    from langchain_tiered_router.emulator import BedrockEmulator
    from langchain_tiered_router.langchain import TieredChatBedrock

    name = f"tiered.test.close.{tmp_path.name}"
    priced_config["telemetry"]["sinks"] = [{"kind": "logging", "logger": name, "level": "INFO"}]
    threads: list[str] = []

    class Threads(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            threads.append(record.threadName)

    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.addHandler(Threads())
    with BedrockEmulator(_SHADOW_SCRIPT) as emu:
        priced_config["endpoint_url"] = emu.url
        model = TieredChatBedrock(config=priced_config)
        model.invoke("before")
        handler = TieredRouterCallbackHandler.from_config(priced_config)
        model.invoke("with the handler", config={"callbacks": [handler]})
        handler.close()
        model.invoke("after")
        assert flush_all()
    caller = threading.current_thread().name
    assert len(threads) == 4 and caller not in threads  # every record written on the writer's thread
