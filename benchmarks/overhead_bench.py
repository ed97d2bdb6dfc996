"""What the router adds to a request, every row against a baseline measured in the same run.

    python benchmarks/overhead_bench.py [--quick] [--model router_model.npz] [--skip-proxy]

Writes benchmarks/results/overhead.json and overhead.md. The machine this runs on may
be shared: every A/B row interleaves its rounds (A then B, then B then A, ...) and
reports the median of the per-round ratios; in-process rows report CPU time of the
calling thread per call (``time.thread_time``) beside wall time, since another
process's load inflates the wall clock of both sides unevenly.

Rows (the issue's table): the trained and the rules classifier's decision at 1k, 10k
and 100k characters, against the previous implementations (whole-text tokenisation,
whole-text keyword scan), with their decisions compared on every recorded prompt;
``TieredChatBedrock.invoke`` against plain ``ChatBedrockConverse`` on the same model
(cascade served by cheap, a JSON gate passing; telemetry off, on; a rules and a trained
classifier policy; botocore's parameter check on, as plain's client runs it), on the local Bedrock-wire emulator in its own process; import and
first construction in fresh processes; the SQLite sink under 8 writer threads; and a
real LiteLLM proxy: ``tiered`` against its cheap deployment called directly (20
concurrent, plain and streamed), a model the hook does not route streamed through a
proxy with the hook and one without, LiteLLM's own logged events of an escalated and of
an exhausted request, proxy start and first requests, with and without the hook. The trained model comes
from ``tiered-router calibrate`` on RouteLLM's GSM8K recordings (or ``--model``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import csv
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch LiteLLM's cost map
# proxies as users start them, each a process of its own (the tests fork them from one
# that has imported LiteLLM, which would make the first start pay for every later one)
os.environ.setdefault("TIERED_TESTS_PROXY_FORK", "0")
# the emulator takes any credentials; a real AWS profile must never be used by a benchmark
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")

CHEAP, MID, FRONTIER = "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"
LADDER = [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
          {"name": "frontier", "model_id": FRONTIER}]
TWO_TIERS = [{"name": "cheap", "model_id": CHEAP}, {"name": "frontier", "model_id": FRONTIER}]
JSON_GATE = [{"kind": "json_schema", "schema": {"type": "object", "required": ["total"],
                                                "properties": {"total": {"type": "number"}}}}]
RULES = [{"tier": "frontier", "keywords": ["prove", "derive", "refactor", "theorem", "integral"]},
         {"tier": "frontier", "keywords": ["explain why", "compare", "summarize"]}]
# cheap writes JSON except for "invoice" requests (escalated to mid); nobody can do "impossible" ones
SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "impossible", "answer": "no idea"}, {"match": "invoice", "answer": "twelve"}],
            "default": '{"total": 12}'},
    MID: {"rules": [{"match": "impossible", "answer": "still no idea"}], "default": '{"total": 12}'},
    FRONTIER: {"rules": [{"match": "impossible", "answer": "not even I"}], "default": '{"total": 12}'}}}
PROMPT = "Give the total of 7 and 5 as JSON."
LENGTHS = (1_000, 10_000, 100_000)


# -- measuring -------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def per_call(fn: Callable[[], Any], n: int, clock: Callable[[], float]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) * 1000)
    return out


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, per_round: int) -> dict[str, Any]:
    """Each round runs every function ``per_round`` times (order reversed every other
    round); per function the median of round medians, per round the ratio of the first
    function to the second, in CPU and in wall time."""
    names = list(fns)
    cpu: dict[str, list[float]] = {k: [] for k in names}
    wall: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times_cpu, times_wall = [], []
            for _ in range(per_round):
                w0, c0 = time.perf_counter(), time.thread_time()
                fns[name]()
                times_cpu.append((time.thread_time() - c0) * 1000)
                times_wall.append((time.perf_counter() - w0) * 1000)
            cpu[name].append(statistics.median(times_cpu))
            wall[name].append(statistics.median(times_wall))
    a, b = names
    return {"ms_cpu": {k: round(statistics.median(v), 4) for k, v in cpu.items()},
            "ms_wall": {k: round(statistics.median(v), 4) for k, v in wall.items()},
            "ratio_cpu": round(statistics.median(x / y for x, y in zip(cpu[a], cpu[b])), 4),
            # the middle half of the rounds' CPU ratios: how far one round strays from another
            "ratio_cpu_quartiles": [round(q, 4) for q in statistics.quantiles(
                [x / y for x, y in zip(cpu[a], cpu[b])], n=4)[::2]] if rounds >= 4 else None,
            "ratio_wall": round(statistics.median(x / y for x, y in zip(wall[a], wall[b])), 4),
            "rounds": rounds, "per_round": per_round}


@contextlib.contextmanager
def emulator_process(script: dict) -> Iterator[str]:
    """The Bedrock-wire emulator in its own process (its CPU is not the caller's)."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.yaml"
        path.write_text(yaml.safe_dump(script))
        proc = subprocess.Popen([sys.executable, "-m", "langchain_tiered_router.emulator", "--script", str(path)],
                                stdout=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            yield proc.stdout.readline().strip()  # type: ignore[union-attr]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


# -- decisions ----------------------------------------------------------------------------

def recorded_prompts(data: Path) -> list[str]:
    prompts = []
    with open(data / "routellm" / "gsm8k" / "gsm8k_responses.csv", encoding="utf-8") as fh:
        prompts += [row["prompt"] for row in csv.DictReader(fh)]
    with open(data / "routellm" / "mt_bench" / "question.jsonl", encoding="utf-8") as fh:
        prompts += [turn for line in fh for turn in json.loads(line)["turns"]]
    for path in sorted((data / "routellm" / "mmlu" / "responses").glob("*.csv")):
        with open(path, encoding="utf-8") as fh:
            prompts += [row["prompt"] for row in csv.DictReader(fh)]
    return prompts


def texts_of(corpus: str, length: int, n: int) -> list[str]:
    """``n`` different texts of ``length`` characters: windows at spread-out offsets."""
    step = max(1, (len(corpus) - length) // n)
    return [corpus[i * step:i * step + length] for i in range(n)]


def unbounded_rules_classify(rules: list[dict], text: str) -> str:
    """The rules classifier before this change: every keyword searched in the whole text."""
    lowered = text.lower()
    for rule in rules:
        for word in rule["keywords"]:
            if re.search(rf"\b{re.escape(word.lower())}\b", lowered):
                return rule["tier"]
    return "cheap"


@contextlib.contextmanager
def whole_text_tokenisation() -> Iterator[None]:
    """The trained model's features as before this change: ``tokenizer.encode`` of the view."""
    import dataclasses

    from langchain_tiered_router.core import features
    from langchain_tiered_router.core.embedding import load_embedding

    slow = dataclasses.replace(load_embedding(), pieces=None)
    original = features.load_embedding
    features.load_embedding = lambda: slow  # type: ignore[assignment]
    try:
        yield
    finally:
        features.load_embedding = original  # type: ignore[assignment]


def decision_rows(model_path: Path, data: Path, quick: bool) -> dict[str, Any]:
    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.build import build_classifier, build_router
    from langchain_tiered_router.core.config import ClassifierConfig

    prompts = recorded_prompts(data)
    corpus = "\n\n".join(prompts)
    ladder = build_router({"tiers": TWO_TIERS, "telemetry": {"sinks": []}}, telemetry=False).ladder
    trained = build_classifier(ClassifierConfig(kind="trained", path=str(model_path)), ladder)  # as the engine builds it
    rules = build_classifier(ClassifierConfig(kind="rules", rules=RULES))
    n = 60 if quick else 200
    out: dict[str, Any] = {}
    caches = [m.__dict__.setdefault("_rows", {}) for m in (trained.model, *trained.model.members)]

    def decided_anew(r: Any) -> Any:
        """A decision as a new prompt meets it: the prompt-features caches (the model's and
        its fold members') cleared, so a repeated text is not a cache lookup."""
        for cache in caches:
            cache.clear()
        return trained.classify(r, ladder)

    for length in LENGTHS:
        texts = [RouteRequest(text=t) for t in texts_of(corpus, length, n)]
        for name, new, old in (
                ("trained", decided_anew, None),
                ("rules", lambda r: rules.classify(r, ladder), lambda r: unbounded_rules_classify(RULES, r.text))):
            new(texts[0])  # loads the model file and the embedding
            it = iter(texts)
            row = {"cold_cpu": per_call(lambda: new(next(it)), len(texts), time.thread_time)}  # words never seen
            it = iter(texts * 4)
            row["new_wall"] = per_call(lambda: new(next(it)), len(texts), time.perf_counter)
            it = iter(texts * 4)
            row["new_cpu"] = per_call(lambda: new(next(it)), len(texts), time.thread_time)
            if name == "trained":
                with whole_text_tokenisation():
                    it = iter(texts * 4)
                    row["old_cpu"] = per_call(lambda: new(next(it)), max(20, len(texts) // 4), time.thread_time)
            else:
                it = iter(texts * 4)
                row["old_cpu"] = per_call(lambda: old(next(it)), len(texts), time.thread_time)
            out[f"{name}_{length}"] = {
                "median_ms_wall": round(statistics.median(row["new_wall"]), 4),
                "p95_ms_wall": round(pct(row["new_wall"], 0.95), 4),
                "median_ms_cpu": round(statistics.median(row["new_cpu"]), 4),
                "p95_ms_cpu": round(pct(row["new_cpu"], 0.95), 4),
                "first_pass_median_ms_cpu": round(statistics.median(row["cold_cpu"]), 4),
                "first_pass_p95_ms_cpu": round(pct(row["cold_cpu"], 0.95), 4),
                "before_median_ms_cpu": round(statistics.median(row["old_cpu"]), 4),
                "before_p95_ms_cpu": round(pct(row["old_cpu"], 0.95), 4),
                "calls": len(row["new_wall"])}
    out["quality"] = decision_quality(trained, rules, ladder, prompts)
    return out


def decision_quality(trained: Any, rules: Any, ladder: Any, prompts: list[str]) -> dict[str, Any]:
    """The decisions on every recorded prompt, before and after: they must not change."""
    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.classifiers import KEYWORD_HEAD_CHARS, KEYWORD_TAIL_CHARS

    requests = [RouteRequest(text=p) for p in prompts]
    after = [trained.classify(r, ladder) for r in requests]
    with whole_text_tokenisation():
        before = [trained.classify(r, ladder) for r in requests]
    same_trained = sum(a.tier == b.tier and a.score == b.score for a, b in zip(after, before))
    same_rules = sum(rules.classify(r, ladder).tier == unbounded_rules_classify(RULES, r.text) for r in requests)
    return {"prompts": len(prompts), "trained_same_decision_and_score": same_trained, "rules_same_tier": same_rules,
            "longest_prompt_chars": max(map(len, prompts)),
            "keyword_window_chars": KEYWORD_HEAD_CHARS + KEYWORD_TAIL_CHARS,
            "trained_frontier_share": round(sum(a.tier == "frontier" for a in after) / len(after), 4)}


# -- the LangChain request path ---------------------------------------------------------------

def langchain_rows(model_path: Path, data: Path, quick: bool) -> dict[str, Any]:
    from langchain_aws import ChatBedrockConverse

    from langchain_tiered_router import TieredChatBedrock
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    rounds, per_round = (10, 15) if quick else (60, 15)
    out: dict[str, Any] = {}
    with emulator_process(SCRIPT) as url, tempfile.TemporaryDirectory() as tmp:
        plain = ChatBedrockConverse(model=CHEAP, endpoint_url=url, region_name="us-east-1")
        variants = {
            "cascade_json_gate": {"tiers": LADDER, "gates": JSON_GATE},
            # botocore's upfront check of every call's parameters, as plain's client runs it
            "cascade_json_gate_validate_params": {"tiers": LADDER, "gates": JSON_GATE,
                                                  "transport": {"validate_params": True}},
            "cascade_json_gate_telemetry_sqlite": {"tiers": LADDER, "gates": JSON_GATE, "telemetry": {
                "sinks": [{"kind": "sqlite", "path": str(Path(tmp) / "t.db")}]}},
            "rules_classifier": {"tiers": LADDER, "policy": {"kind": "classifier", "classifier": {
                "kind": "rules", "rules": RULES}}},
            "trained_classifier": {"tiers": TWO_TIERS, "policy": {"kind": "classifier", "classifier": {
                "kind": "trained", "path": str(model_path)}}},
        }
        for name, cfg in variants.items():
            cfg = {"telemetry": {"sinks": []}, **cfg, "endpoint_url": url}
            tiered = TieredChatBedrock(config=cfg)
            for _ in range(30):
                tiered.invoke(PROMPT)
                plain.invoke(PROMPT)
            out[name] = interleaved({"tiered": lambda: tiered.invoke(PROMPT), "plain": lambda: plain.invoke(PROMPT)},
                                    rounds, per_round)
            out[name]["served_by"] = tiered.invoke(PROMPT).response_metadata["routing"]["model_id"]
        prompts = recorded_prompts(data)
        for name in ("rules_classifier", "trained_classifier"):
            cfg = {"telemetry": {"sinks": []}, **variants[name], "endpoint_url": url}
            out[f"{name}_varied"] = varied_prompts_row(plain, TieredChatBedrock(config=cfg), prompts, rounds, per_round)
        out["sqlite_linger"] = linger_row(url, Path(tmp), rounds, per_round)
        first = TieredChatBedrock(config={"telemetry": {"sinks": []}, "tiers": LADDER, "gates": JSON_GATE,
                                          "endpoint_url": url})
        out["inside_outside"] = inside_outside_row(plain, first, rounds)
        out["own_cpu"] = own_cpu_row(plain, first, rounds)
        out["wrapper_only"] = wrapper_only_row(plain, first, rounds, per_round)
        out["decision_in_requests"] = decision_in_requests_row(
            plain, TieredChatBedrock(config={"telemetry": {"sinks": []}, **variants["trained_classifier"],
                                             "endpoint_url": url}), recorded_prompts(data), quick)
        flush_all()
    return out


def varied_prompts_row(plain: Any, tiered: Any, prompts: list[str], rounds: int, per_round: int) -> dict[str, Any]:
    """A classifier row as traffic meets it: every call a different recorded prompt (the
    fixed-prompt rows decide from the prompt-features cache after their first call),
    both sides given the same prompts in the same order."""
    warmup = 30
    picked = random.Random(11).sample(prompts, warmup + rounds * per_round)
    for prompt in picked[:warmup]:  # the classifier meets its first words, both clients their first calls
        tiered.invoke(prompt)
        plain.invoke(prompt)
    sides = {"tiered": iter(picked[warmup:]), "plain": iter(picked[warmup:])}
    row = interleaved({"tiered": lambda: tiered.invoke(next(sides["tiered"])),
                       "plain": lambda: plain.invoke(next(sides["plain"]))}, rounds, per_round)
    timed = picked[warmup:]
    row.update({"prompts": len(timed), "mean_prompt_chars": round(statistics.mean(map(len, timed))),
                "max_prompt_chars": max(map(len, timed))})
    return row


def linger_row(url: str, tmp: Path, rounds: int, per_round: int) -> dict[str, Any]:
    """The SQLite-sink row's request path with the writer's linger (the default) against
    ``linger_s: 0`` (the writer woken for every record), interleaved in one process."""
    from langchain_tiered_router import TieredChatBedrock

    def routed(name: str, linger: float) -> Any:
        sink = {"kind": "sqlite", "path": str(tmp / f"{name}.db"), "linger_s": linger}
        return TieredChatBedrock(config={"tiers": LADDER, "gates": JSON_GATE, "endpoint_url": url,
                                         "telemetry": {"sinks": [sink]}})

    lingering, eager = routed("linger", 0.05), routed("eager", 0.0)
    for _ in range(30):
        lingering.invoke(PROMPT)
        eager.invoke(PROMPT)
    return interleaved({"linger": lambda: lingering.invoke(PROMPT), "eager": lambda: eager.invoke(PROMPT)},
                       rounds, per_round)


def wrapper_only_row(plain: Any, tiered: Any, rounds: int, per_round: int) -> dict[str, Any]:
    """How much of the first row is LangChain's side of ``TieredChatBedrock``: its
    ``_generate`` calls the cheap tier's model straight, no routing at all. What the
    first row adds beyond this is the router's own work."""
    from langchain_tiered_router import TieredChatBedrock

    cheap = tiered._models["cheap"]
    routed = TieredChatBedrock.__dict__["_generate"]

    def straight(self: Any, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        return cheap._generate(messages, stop=stop, **kwargs)

    straight.__signature__ = routed.__signature__  # type: ignore[attr-defined]
    TieredChatBedrock._generate = straight  # type: ignore[method-assign]
    try:
        return interleaved({"tiered": lambda: tiered.invoke(PROMPT), "plain": lambda: plain.invoke(PROMPT)},
                           rounds, per_round)
    finally:
        TieredChatBedrock._generate = routed  # type: ignore[method-assign]


def decision_in_requests_row(plain: Any, tiered: Any, prompts: list[str], quick: bool) -> dict[str, Any]:
    """The trained decision as a request meets it: recorded prompts routed one by one,
    each between HTTP calls (a plain ``ChatBedrockConverse`` call after each, as other
    requests would make), against the same decisions made again in a warm loop. The
    first pass meets words it has not seen; the second, timed against the warm loop,
    knows them, so the two differ only in where the decision runs: between HTTP calls its
    code and data have left the CPU's caches."""
    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.classifiers import TrainedClassifier

    classify = TrainedClassifier.classify
    spent: list[float] = []

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return classify(self, *args, **kwargs)
        finally:
            spent.append((time.thread_time() - c0) * 1000)

    n = 200 if quick else 600
    picked = random.Random(7).sample(prompts, n)
    classifier = tiered.built.router.policy.classifier
    ladder = tiered.built.router.ladder
    # the prompt-features caches, cleared before each decision: the model's and its fold
    # members' (a member decides a prompt of its fold)
    caches = [m.__dict__.setdefault("_rows", {}) for m in (classifier.model, *classifier.model.members)]

    class _Rows:
        @staticmethod
        def clear() -> None:
            for cache in caches:
                cache.clear()

    rows = _Rows()
    TrainedClassifier.classify = timed  # type: ignore[method-assign]
    try:
        for prompt in picked:  # first pass: many words not seen before
            rows.clear()
            tiered.invoke(prompt)
            plain.invoke(prompt)
        first, spent[:] = list(spent), []
        for prompt in picked:  # the same prompts again: words known, features made anew
            rows.clear()
            tiered.invoke(prompt)
            plain.invoke(prompt)
        in_requests, spent[:] = list(spent), []
        for prompt in picked:
            rows.clear()
            classifier.classify(RouteRequest(text=prompt), ladder)
        warm = list(spent)
    finally:
        TrainedClassifier.classify = classify  # type: ignore[method-assign]
    return {"calls": n, "mean_prompt_chars": round(statistics.mean(len(p) for p in picked)),
            "max_prompt_chars": max(len(p) for p in picked),
            "first_pass_in_requests_ms_cpu": {"median": round(statistics.median(first), 4),
                                              "p95": round(pct(first, 0.95), 4)},
            "in_requests_ms_cpu": {"median": round(statistics.median(in_requests), 4),
                                   "p95": round(pct(in_requests, 0.95), 4)},
            "warm_loop_ms_cpu": {"median": round(statistics.median(warm), 4), "p95": round(pct(warm, 0.95), 4)}}


@contextlib.contextmanager
def tier_calls_as(generate: Callable[..., Any]) -> Iterator[None]:
    """``ChatBedrockConverse._generate`` (every tier call, and plain's) replaced for a while."""
    from langchain_aws import ChatBedrockConverse

    real = ChatBedrockConverse._generate
    ChatBedrockConverse._generate = generate
    try:
        yield
    finally:
        ChatBedrockConverse._generate = real


def inside_outside_row(plain: Any, tiered: Any, rounds: int) -> dict[str, Any]:
    """The first invoke row's CPU split at the tier's HTTP call: inside
    ``ChatBedrockConverse._generate`` (the same work on both sides) and outside it
    (LangChain's wrapper; plus the router on the tiered side), per call, median of rounds."""
    from langchain_aws import ChatBedrockConverse

    real = ChatBedrockConverse._generate
    inside = [0.0]

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return real(self, *args, **kwargs)
        finally:
            inside[0] += time.thread_time() - c0

    split: dict[str, list[tuple[float, float]]] = {"tiered": [], "plain": []}
    with tier_calls_as(timed):
        for r in range(rounds):
            for name, model in (("tiered", tiered), ("plain", plain))[:: 1 if r % 2 == 0 else -1]:
                inside[0] = 0.0
                c0 = time.thread_time()
                for _ in range(30):
                    model.invoke(PROMPT)
                total = (time.thread_time() - c0) / 30 * 1e6
                split[name].append((total, inside[0] / 30 * 1e6))
    return {name: {"total_us_cpu": round(statistics.median(t for t, _ in v), 1),
                   "inside_http_call_us_cpu": round(statistics.median(i for _, i in v), 1),
                   "outside_us_cpu": round(statistics.median(t - i for t, i in v), 1)} for name, v in split.items()}


def own_cpu_row(plain: Any, tiered: Any, rounds: int) -> dict[str, Any]:
    """What the router itself adds, without the HTTP call's noise: the tier call is
    answered from memory on both sides (``ChatBedrockConverse._generate`` returns a new
    result holding a copy of one real reply), so the difference is the router alone."""
    from langchain_core.messages import HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    message = plain._generate([HumanMessage(PROMPT)]).generations[0].message

    def from_memory(self: Any, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        # a new result and message per call, as from Bedrock: both sides change what they are handed
        return ChatResult(generations=[ChatGeneration(message=message.model_copy())])

    with tier_calls_as(from_memory):
        for _ in range(300):
            tiered.invoke(PROMPT)
            plain.invoke(PROMPT)
        row = interleaved({"tiered": lambda: tiered.invoke(PROMPT), "plain": lambda: plain.invoke(PROMPT)},
                          rounds, 200)
    row["router_us_cpu"] = round((row["ms_cpu"]["tiered"] - row["ms_cpu"]["plain"]) * 1000, 1)
    return row


def langsmith_row() -> dict[str, Any]:
    """The runs LangChain's LangSmith tracer would send for an escalated request (its
    upload replaced by a list): the model each attempt run is priced as."""
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client

    from langchain_tiered_router import TieredChatBedrock

    sent: dict[str, Any] = {}

    class Captured(LangChainTracer):
        def _persist_run_single(self, run: Any) -> None:
            sent[str(run.id)] = run

        @staticmethod
        def _update_run_single(run: Any) -> None:
            sent[str(run.id)] = run

    client = Client(api_url="http://127.0.0.1:9", api_key="bench", auto_batch_tracing=False, info={})
    with emulator_process(SCRIPT) as url:
        llm = TieredChatBedrock(config={"tiers": LADDER, "gates": JSON_GATE, "endpoint_url": url,
                                        "telemetry": {"sinks": []}})
        llm.invoke("the invoice total, as JSON", config={"callbacks": [Captured(client=client)]})
    runs = sorted(sent.values(), key=lambda r: r.start_time)
    return {"runs": [{"name": r.name, "run_type": r.run_type,
                      "ls_model_name": (r.extra.get("metadata") or {}).get("ls_model_name"),
                      "tokens": ((r.extra.get("metadata") or {}).get("usage_metadata") or {}).get("total_tokens")}
                     for r in runs]}


# -- import and construction -------------------------------------------------------------------

_IMPORT = """
import os, sys, time, json
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
t0 = time.perf_counter()
import langchain_aws
from langchain_aws import ChatBedrockConverse
t1 = time.perf_counter()
if sys.argv[1] == "tiered":
    from langchain_tiered_router import TieredChatBedrock
t2 = time.perf_counter()
if sys.argv[1] == "tiered":
    TieredChatBedrock(config={"tiers": %(ladder)r, "gates": %(gates)r, "endpoint_url": "http://127.0.0.1:9",
                              "telemetry": {"sinks": []}})
else:
    ChatBedrockConverse(model=%(cheap)r, region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
t3 = time.perf_counter()
print(json.dumps({"aws_import": t1 - t0, "own_import": t2 - t1, "construct": t3 - t2}))
""" % {"ladder": LADDER, "gates": JSON_GATE, "cheap": CHEAP}


def import_rows(quick: bool) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"tiered": [], "plain": []}
    for r in range(3 if quick else 7):
        for which in (("tiered", "plain") if r % 2 == 0 else ("plain", "tiered")):
            done = subprocess.run([sys.executable, "-c", _IMPORT, which], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
            runs[which].append(json.loads(done.stdout.strip().splitlines()[-1]))

    def med(which: str, key: str) -> float:
        return round(statistics.median(x[key] for x in runs[which]) * 1000, 1)

    return {"langchain_aws_import_ms": med("plain", "aws_import"),
            "tiered_router_import_beyond_langchain_aws_ms": med("tiered", "own_import"),
            "first_construction_ms": {"tiered": med("tiered", "construct"), "plain": med("plain", "construct")},
            "processes": len(runs["tiered"]) + len(runs["plain"])}


# -- the SQLite sink -----------------------------------------------------------------------------

def sqlite_row(quick: bool) -> dict[str, Any]:
    """The SQLite sink fed by 8 threads, end to end (written, flushed, counted in the file).

    Two runs, each on a fresh file, with records of requests routed beforehand by a router
    that records nothing (so every request id is new to the file):

    * ``paced``: the 8 threads together offer 20,000 records a second for 5 s: does the
      writer keep pace (rows landed, drops, how long the queue took to drain after the
      last record)? What the writer and the request threads spend per record, in CPU.
    * ``burst``: 20,000 records offered at once, as fast as the threads can: a burst
      larger than the queue (10,000) must drop and count, never block a request.
    """
    rate, seconds = (20_000, 1.0) if quick else (20_000, 5.0)
    paced = _sqlite_run(int(rate * seconds), rate)
    burst = _sqlite_run(4_000 if quick else 20_000, None)
    return {"paced": paced, "burst": burst}


def _sqlite_run(total: int, rate: float | None) -> dict[str, Any]:
    import resource

    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.telemetry.sqlite import connect
    from langchain_tiered_router.core.testing import ScriptedBackend

    backend = ScriptedBackend({"*": '{"total": 12}'})
    quiet = build_router({"tiers": LADDER, "gates": JSON_GATE, "telemetry": {"sinks": []}})
    # 1,000 routed results, then shallow copies of them under new request ids: a server
    # holds the results of the requests in flight, not 100,000 of them (their objects
    # would make every garbage collection of the writer's allocations scan millions).
    templates = [quiet.route(RouteRequest(text=f"q{i}"), backend) for i in range(1_000)]
    results = []
    for i in range(total):
        result = copy.copy(templates[i % len(templates)])
        result.request_id = f"{i:032x}"
        results.append(result)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sink.db"
        router = build_router({"tiers": LADDER, "gates": JSON_GATE,
                               "telemetry": {"sinks": [{"kind": "sqlite", "path": str(db)}]}})
        recorder = router.observers[0]
        sink = recorder.sinks.sinks[0]
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0 = time.process_time()
        started = time.perf_counter()

        def write(part: list[Any]) -> None:
            per_thread = None if rate is None else rate / 8
            for k, result in enumerate(part):
                if per_thread is not None:
                    wait = started + k / per_thread - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                recorder(result, result.request, backend)

        threads = [threading.Thread(target=write, args=(results[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        offered = time.perf_counter() - started
        writer = sink._thread
        writer_cpu = time.clock_gettime(time.pthread_getcpuclockid(writer.ident)) if writer is not None else 0.0
        process_cpu = time.process_time() - cpu0
        recorder.flush()
        elapsed = time.perf_counter() - started
        with contextlib.closing(connect(db)) as conn:
            rows = conn.execute("SELECT COUNT(*) FROM routing_records").fetchone()[0]
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dropped = sink.dropped
        recorder.close()
    return {"records": total, "offered_per_s": round(total / offered), "offered_s": round(offered, 3),
            "rows_landed": rows, "dropped": dropped, "landed_per_s": round(rows / elapsed),
            "drain_s_after_last": round(elapsed - offered, 3),
            "writer_cpu_us_per_row": round(writer_cpu / max(1, rows) * 1e6, 1),
            "request_threads_cpu_us_per_record": round((process_cpu - writer_cpu) / total * 1e6, 1),
            "max_rss_growth_mb": round((rss1 - rss0) / 1024, 1)}


# -- the LiteLLM proxy -----------------------------------------------------------------------------

def proxy_configs(emulator_url: str, work: Path, callbacks: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """The proxy ``config.yaml``s of the proxy rows, (with the hook, without it): the tier
    deployments on the emulator; with the hook also ``tiered`` (``on_exhausted: flag``) and
    ``tiered-strict`` (``raise``), each behind the JSON gate, their router YAMLs in ``work``."""
    import yaml

    deployments = [{"model_name": t["name"], "litellm_params": {
        "model": f"bedrock/converse/{t['model_id']}", "aws_region_name": "us-east-1",
        "aws_bedrock_runtime_endpoint": emulator_url, "aws_access_key_id": "AKIABENCH",
        "aws_secret_access_key": "bench"}} for t in LADDER]
    routers = {}
    for name, extra in (("tiered", {"on_exhausted": "flag"}), ("tiered-strict", {"on_exhausted": "raise"})):
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"tiers": LADDER, "gates": JSON_GATE, "telemetry": {"sinks": []},
                                        "retry": {"max_retries": 0}, **extra}))
        routers[name] = path
    general = {"master_key": "sk-ops", "custom_auth": "tests.litellm.proxy_auth.user_api_key_auth"}
    # each on the provider's path (one-pass switched off), and as "<name>-one-pass" (the default)
    tiered = [{"model_name": n + suffix, "litellm_params": {
        "model": f"tiered_router/{n}", "tiered_router_config": str(p), **extra}}
        for suffix, extra in (("", {"tiered_router_one_pass": False}), ("-one-pass", {}))
        for n, p in routers.items()]
    with_hook = {
        "model_list": deployments + tiered,
        "litellm_settings": {"callbacks": ["litellm_hooks.proxy_handler_instance", *callbacks],
                             "custom_provider_map": [{"provider": "tiered_router",
                                                      "custom_handler": "litellm_hooks.tiered_router_provider"}]},
        "router_settings": {"num_retries": 0}, "general_settings": general}
    without_hook = {"model_list": deployments, "router_settings": {"num_retries": 0}, "general_settings": general}
    return with_hook, without_hook


def proxy_rows(quick: bool, work: Path) -> dict[str, Any]:
    import httpx

    from tests.litellm._proc import _Proxy, _stop

    def proxy_cpu(pid: int) -> float:
        """CPU seconds of the proxy's process group."""
        found = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
        total = 0
        for p in {pid, *map(int, found)}:
            with contextlib.suppress(FileNotFoundError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    async def load(base: str, model: str, n: int, concurrency: int, text: str = PROMPT, key: str = "sk-ops",
                   stream: bool = False) -> float:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                     limits=httpx.Limits(max_connections=concurrency)) as client:
            gate = asyncio.Semaphore(concurrency)
            body = {"model": model, "messages": [{"role": "user", "content": text}], **({"stream": True} if stream else {})}

            async def one() -> None:
                async with gate:
                    if not stream:
                        (await client.post("/chat/completions", json=body)).raise_for_status()
                        return
                    async with client.stream("POST", "/chat/completions", json=body) as r:
                        r.raise_for_status()
                        events = [line async for line in r.aiter_lines() if line.startswith("data: ")]
                        if events[-1] != "data: [DONE]" or '"error"' in events[0]:
                            raise RuntimeError(f"a stream that did not finish: {events[:2]}")

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return n / (time.perf_counter() - t0)

    def timed_one(base: str, model: str) -> float:
        t0 = time.perf_counter()
        asyncio.run(load(base, model, 1, 1))
        return round((time.perf_counter() - t0) * 1000, 1)

    out: dict[str, Any] = {}
    payloads = work / "payloads.jsonl"
    with emulator_process(SCRIPT) as url:
        with_hook, without_hook = proxy_configs(url, work, ("tests.litellm.payload_logger.instance",))
        env = {"TIERED_TEST_PAYLOADS": str(payloads), "PYTHONPATH": str(REPO)}
        plain = _Proxy(without_hook, work, env, warm_up=False)
        start = {"without_hook_s": round(plain.wait_ready(300)["start_s"], 1)}
        first_plain = [timed_one(plain.url, "cheap"), timed_one(plain.url, "cheap")]
        _stop(plain.proc)
        one_pass = _Proxy(with_hook, work, env, warm_up=False)
        one_pass.wait_ready(300)
        first_one_pass = [timed_one(one_pass.url, "tiered-one-pass"), timed_one(one_pass.url, "tiered-one-pass")]
        _stop(one_pass.proc)
        # LiteLLM's own first call of a deployment, on a proxy that loads the hook: what
        # the routed first request pays that is not the router's
        plain_hooked = _Proxy(with_hook, work, env, warm_up=False)
        plain_hooked.wait_ready(300)
        first_plain_hooked = [timed_one(plain_hooked.url, "cheap"), timed_one(plain_hooked.url, "cheap")]
        _stop(plain_hooked.proc)
        hooked = _Proxy(with_hook, work, env, warm_up=False)
        start["with_hook_s"] = round(hooked.wait_ready(300)["start_s"], 1)
        first_tiered = [timed_one(hooked.url, "tiered"), timed_one(hooked.url, "tiered")]
        first_after = [timed_one(hooked.url, "cheap")]
        out["start"] = {**start, "first_two_requests_ms": {"tiered (fresh proxy with the hook)": first_tiered,
                                                           "tiered-one-pass (another fresh one)": first_one_pass,
                                                           "cheap (fresh proxy without it)": first_plain,
                                                           "cheap (fresh proxy with the hook, not routed)":
                                                               first_plain_hooked,
                                                           "cheap after them": first_after}}
        try:
            out["accounting"] = proxy_accounting(hooked.url, payloads)
            out["accounting_one_pass"] = proxy_accounting(hooked.url, payloads, suffix="-one-pass")
            base = hooked.url
            # (model, streamed): each routed series against the direct one of the same kind
            series = [(m, streamed) for streamed in (False, True) for m in ("tiered", "tiered-one-pass", "cheap")]
            for model, streamed in series:
                asyncio.run(load(base, model, 60, 20, stream=streamed))
            rounds, n = (4, 40) if quick else (12, 60)
            rates: dict[tuple[str, bool], list[float]] = {s: [] for s in series}
            cpu: dict[tuple[str, bool], list[float]] = {s: [] for s in series}
            for r in range(rounds):
                for model, streamed in (series if r % 2 == 0 else series[::-1]):
                    c0 = proxy_cpu(hooked.proc.pid)
                    rates[model, streamed].append(asyncio.run(load(base, model, n, 20, stream=streamed)))
                    cpu[model, streamed].append((proxy_cpu(hooked.proc.pid) - c0) / n * 1000)
            for name, model, streamed in (("throughput", "tiered", False),
                                          ("throughput_one_pass", "tiered-one-pass", False),
                                          ("throughput_stream", "tiered", True),
                                          ("throughput_one_pass_stream", "tiered-one-pass", True)):
                routed, direct = (model, streamed), ("cheap", streamed)
                out[name] = {
                    "req_per_s": {"tiered": round(statistics.median(rates[routed]), 1),
                                  "cheap": round(statistics.median(rates[direct]), 1)},
                    "ratio": round(statistics.median(t / c for t, c in zip(rates[routed], rates[direct])), 3),
                    "proxy_cpu_ms_per_request": {"tiered": round(statistics.median(cpu[routed]), 2),
                                                 "cheap": round(statistics.median(cpu[direct]), 2)},
                    "cpu_ratio": round(statistics.median(c / t for t, c in zip(cpu[routed], cpu[direct])), 3),
                    "rounds": rounds, "requests_per_round": n, "concurrency": 20, "streamed": streamed}
        finally:
            _stop(hooked.proc)
    return out


def unrouted_stream_row(quick: bool, work: Path) -> dict[str, Any]:
    """Streams of a model the hook does not route, 200 chunks each, through a proxy that
    loads the hook against one that does not (both up at once, rounds interleaved): what
    the hook's streaming step costs a stream it hands back untouched."""
    import httpx

    from tests.litellm._proc import _Proxy, _stop

    long_answer = " ".join(f"word{i}" for i in range(600))  # the emulator streams 3 words a chunk
    script = {"models": {m: {"default": long_answer} for m in (CHEAP, MID, FRONTIER)}}

    async def load(base: str, n: int, concurrency: int) -> float:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer sk-ops"}, timeout=120,
                                     limits=httpx.Limits(max_connections=concurrency)) as client:
            gate = asyncio.Semaphore(concurrency)
            body = {"model": "cheap", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}

            async def one() -> None:
                async with gate, client.stream("POST", "/chat/completions", json=body) as r:
                    r.raise_for_status()
                    events = [line async for line in r.aiter_lines() if line.startswith("data: ")]
                    if len(events) < 200:
                        raise RuntimeError(f"a stream of {len(events)} events")

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return n / (time.perf_counter() - t0)

    with emulator_process(script) as url:
        with_hook, without_hook = proxy_configs(url, work)
        env = {"PYTHONPATH": str(REPO)}
        hooked, plain = _Proxy(with_hook, work, env), _Proxy(without_hook, work, env)
        try:
            hooked.wait_ready(300)
            plain.wait_ready(300)
            for proxy in (hooked, plain):
                asyncio.run(load(proxy.url, 20, 10))
            rounds, n = (4, 20) if quick else (10, 30)
            rates: dict[str, list[float]] = {"hooked": [], "plain": []}
            for r in range(rounds):
                order = [("hooked", hooked), ("plain", plain)]
                for name, proxy in (order if r % 2 == 0 else order[::-1]):
                    rates[name].append(asyncio.run(load(proxy.url, n, 10)))
        finally:
            _stop(hooked.proc)
            _stop(plain.proc)
    return {"streams_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()},
            "ratio": round(statistics.median(h / p for h, p in zip(rates["hooked"], rates["plain"])), 3),
            "rounds": rounds, "streams_per_round": n, "concurrency": 10, "chunks_per_stream": 200}


def proxy_accounting(base: str, payloads: Path, suffix: str = "") -> dict[str, Any]:
    """LiteLLM's own logged events (its standard logging payloads) for one escalated and
    one exhausted request: how many, what cost, whose key, what tokens (``suffix``
    "-one-pass": of the one-pass models)."""
    import httpx

    def events(request_id: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 15
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            text = payloads.read_text() if payloads.exists() else ""
            found = [p for p in map(json.loads, text.split("\n")[:-1])  # complete lines: one may be mid-write
                     if ((p.get("spend_logs_metadata") or {}).get("tiered_router") or {}).get("request_id") == request_id
                     or (p.get("tier_call") or {}).get("request_id") == request_id]
            if found:
                time.sleep(1.0)  # and any late second event
                lines = payloads.read_text().splitlines()
                return [p for p in map(json.loads, lines)
                        if ((p.get("spend_logs_metadata") or {}).get("tiered_router") or {}).get("request_id")
                        == request_id or (p.get("tier_call") or {}).get("request_id") == request_id]
            time.sleep(0.1)
        return found

    def summary(evs: list[dict[str, Any]], routing: dict[str, Any]) -> dict[str, Any]:
        attempts = routing["attempts"]
        return {"logged_events": len(evs), "events": [
            {k: e.get(k) for k in ("event", "model_group", "response_cost", "cost_finalized", "prompt_tokens",
                                   "completion_tokens", "key_alias", "team_id")} for e in evs],
            "logged_cost_sum": sum(float(e.get("response_cost") or 0) for e in evs),
            "routed_cost": routing["cost_usd"],
            "attempt_tokens": {"input": sum(a["input_tokens"] for a in attempts),
                               "output": sum(a["output_tokens"] for a in attempts)},
            "routing_decision": (evs[0].get("routing_decision") if evs else None)}

    headers = {"Authorization": "Bearer sk-ops"}
    escalated = httpx.post(f"{base}/chat/completions", headers=headers, timeout=60, json={
        "model": "tiered" + suffix, "messages": [{"role": "user", "content": "the invoice total, as JSON"}]})
    escalated.raise_for_status()
    routing = escalated.json()["tiered_router"]
    out = {"escalated": summary(events(routing["request_id"]), routing)}
    out["escalated"]["x-litellm-response-cost"] = escalated.headers.get("x-litellm-response-cost")
    exhausted = httpx.post(f"{base}/chat/completions", headers=headers, timeout=60, json={
        "model": "tiered-strict" + suffix, "messages": [{"role": "user", "content": "an impossible invoice"}]})
    request_id = re.search(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{32})', exhausted.text)
    evs = events(request_id.group(1)) if request_id else []
    routing = ((evs[0].get("spend_logs_metadata") or {}).get("tiered_router") if evs else None) or {
        "attempts": [], "cost_usd": None}
    out["exhausted"] = {"status": exhausted.status_code, **summary(evs, routing)}
    return out


# -- the report ----------------------------------------------------------------------------------------

def markdown(results: dict[str, Any]) -> str:
    rows = ["| what | measured (this run) | baseline in the same run | goal |", "|---|---|---|---|"]
    d = results.get("decisions")
    if d:
        for name, goal in (("trained", "p95 < 1 ms at every length"), ("rules", "p95 < 1 ms at every length")):
            cells = [f"{length // 1000}k: {d[f'{name}_{length}']['median_ms_wall']:.2f} / "
                     f"{d[f'{name}_{length}']['p95_ms_wall']:.2f} ms (CPU {d[f'{name}_{length}']['median_ms_cpu']:.2f}"
                     f" / {d[f'{name}_{length}']['p95_ms_cpu']:.2f})" for length in LENGTHS]
            before = [f"{length // 1000}k: {d[f'{name}_{length}']['before_median_ms_cpu']:.2f} / "
                      f"{d[f'{name}_{length}']['before_p95_ms_cpu']:.2f} ms CPU" for length in LENGTHS]
            what = ("trained classifier decision (`classify`), median / p95" if name == "trained"
                    else "rules classifier decision, median / p95")
            if name == "trained":
                cells.append("first pass over unseen words: " + "; ".join(
                    f"{length // 1000}k {d[f'{name}_{length}']['first_pass_median_ms_cpu']:.2f} / "
                    f"{d[f'{name}_{length}']['first_pass_p95_ms_cpu']:.2f} ms CPU" for length in LENGTHS))
            rows.append(f"| {what} | {'; '.join(cells)} | before: {'; '.join(before)} | {goal} |")
        q = d["quality"]
        rows.append(f"| decisions on the {q['prompts']:,} recorded prompts (GSM8K, MT-Bench, MMLU) | trained: "
                    f"{q['trained_same_decision_and_score']:,} identical (tier and score); rules: "
                    f"{q['rules_same_tier']:,} identical (longest prompt {q['longest_prompt_chars']:,} chars, "
                    f"keyword window {q['keyword_window_chars']:,}) | the previous implementations | unchanged |")
    lc = results.get("langchain")
    if lc:
        labels = {"cascade_json_gate": "`TieredChatBedrock.invoke` (cascade, served by cheap, JSON gate passes)",
                  "cascade_json_gate_telemetry_sqlite": "the same, telemetry on (SQLite sink)",
                  "rules_classifier": "the same with a classifier policy: rules",
                  "trained_classifier": "the same with a classifier policy: trained",
                  "rules_classifier_varied": "the rules row, every call a different recorded prompt",
                  "trained_classifier_varied": "the trained row, every call a different recorded prompt",
                  "cascade_json_gate_validate_params": "the first row with `transport.validate_params: true` "
                                                       "(botocore checks each tier call's parameters, as plain's "
                                                       "client does; by default the router's clients leave that "
                                                       "to Bedrock)"}
        for key, label in labels.items():
            r = lc.get(key)
            if r is None:
                continue
            if "prompts" in r:
                label += (f" ({r['prompts']:,} prompts of GSM8K, MT-Bench and MMLU, mean {r['mean_prompt_chars']:,} "
                          f"chars, longest {r['max_prompt_chars']:,})")
            spread = r.get("ratio_cpu_quartiles")
            middle = f" (rounds' middle half {spread[0]:.3f}-{spread[1]:.3f}x)" if spread else ""
            rows.append(f"| {label} | {r['ms_cpu']['tiered']:.3f} ms CPU, {r['ms_wall']['tiered']:.3f} ms wall: "
                        f"**{r['ratio_cpu']:.3f}x** CPU{middle}, {r['ratio_wall']:.3f}x wall | plain `ChatBedrockConverse`: "
                        f"{r['ms_cpu']['plain']:.3f} ms CPU, {r['ms_wall']['plain']:.3f} ms wall | "
                        f"{'-' if key.endswith('validate_params') else '<= 1.05x'} |")
        io = lc.get("inside_outside")
        if io:
            t, p = io["tiered"], io["plain"]
            rows.append(f"| the first row's CPU split at the tier's HTTP call (`ChatBedrockConverse._generate`) "
                        f"| inside {t['inside_http_call_us_cpu']:.0f} µs, outside **{t['outside_us_cpu']:.0f} µs** "
                        f"(LangChain's wrapper and the router) | inside {p['inside_http_call_us_cpu']:.0f} µs, "
                        f"outside {p['outside_us_cpu']:.0f} µs (LangChain's wrapper) | - |")
        linger = lc.get("sqlite_linger")
        if linger:
            rows.append(f"| the SQLite-sink row with the writer's 50 ms linger (the default) against `linger_s: 0` "
                        f"(woken for every record) | {linger['ms_cpu']['linger']:.3f} ms CPU: **{linger['ratio_cpu']:.3f}x"
                        f"** CPU, {linger['ratio_wall']:.3f}x wall | `linger_s: 0`: {linger['ms_cpu']['eager']:.3f} ms "
                        f"CPU | - |")
        wrapper = lc.get("wrapper_only")
        if wrapper:
            rows.append(f"| LangChain's side of `TieredChatBedrock` alone: the first row with `_generate` calling the "
                        f"cheap tier's model straight (no routing) | **{wrapper['ratio_cpu']:.3f}x** CPU, "
                        f"{wrapper['ratio_wall']:.3f}x wall: what the first row adds beyond this is the router's own "
                        f"work | plain `ChatBedrockConverse` | - |")
        dec = lc.get("decision_in_requests")
        if dec:
            a, b, f = dec["in_requests_ms_cpu"], dec["warm_loop_ms_cpu"], dec["first_pass_in_requests_ms_cpu"]
            rows.append(f"| the trained decision inside requests: {dec['calls']} recorded prompts (mean "
                        f"{dec['mean_prompt_chars']:,} chars, longest {dec['max_prompt_chars']:,}), each made between two "
                        f"HTTP calls | {a['median']:.2f} / {a['p95']:.2f} ms CPU, median / p95 (first pass over their "
                        f"words: {f['median']:.2f} / {f['p95']:.2f} ms) | the same decisions in a warm loop: "
                        f"{b['median']:.2f} / {b['p95']:.2f} ms | p95 < 1 ms |")
        own = lc.get("own_cpu")
        if own:
            rows.append(f"| the router's own CPU: the first row with the tier call answered from memory on both "
                        f"sides | {own['ms_cpu']['tiered'] * 1000:.0f} µs CPU per `invoke`: **+{own['router_us_cpu']:.0f}"
                        f" µs** | plain `ChatBedrockConverse` (LangChain's wrapper alone): "
                        f"{own['ms_cpu']['plain'] * 1000:.0f} µs | - |")
    imp = results.get("import")
    if imp:
        rows.append(f"| import + first construction in a fresh process | import "
                    f"{imp['tiered_router_import_beyond_langchain_aws_ms']:.0f} ms beyond langchain-aws; first "
                    f"`TieredChatBedrock` {imp['first_construction_ms']['tiered']:.0f} ms | langchain-aws import "
                    f"{imp['langchain_aws_import_ms']:.0f} ms; first `ChatBedrockConverse` "
                    f"{imp['first_construction_ms']['plain']:.0f} ms | import < 0.5 s beyond langchain-aws's own |")
    sq = results.get("sqlite")
    if sq:
        p, b = sq["paced"], sq["burst"]
        rows.append(f"| SQLite sink, 8 threads offering {p['offered_per_s']:,} records/s for {p['offered_s']:.0f} s "
                    f"(fresh request ids), end to end | {p['rows_landed']:,} of {p['records']:,} rows landed, "
                    f"{p['dropped']:,} dropped, queue drained {p['drain_s_after_last']:.2f} s after the last "
                    f"record ({p['landed_per_s']:,} rows/s from first record to last commit); writer "
                    f"{p['writer_cpu_us_per_row']} µs CPU per row, request threads {p['request_threads_cpu_us_per_record']}"
                    f" µs per record; max RSS +{p['max_rss_growth_mb']} MB | - | >= 20k records/s, bounded memory |")
        rows.append(f"| the same, a burst of {b['records']:,} records at once ({b['offered_per_s']:,} records/s "
                    f"offered) | {b['rows_landed']:,} landed, {b['dropped']:,} dropped and counted (queue "
                    f"10,000), none blocked; {b['landed_per_s']:,} rows/s | - | back-pressure or counted drops, "
                    f"never a blocked request |")
    px = results.get("proxy")
    if px:
        for key, how in (("throughput", "the provider's path"), ("throughput_one_pass", "one-pass"),
                         ("throughput_stream", "streamed, the provider's path"),
                         ("throughput_one_pass_stream", "streamed, one-pass")):
            t = px.get(key)
            if t:
                rows.append(f"| LiteLLM proxy, model `tiered` ({how}; served by cheap, gate passes) vs the same "
                            f"deployment called directly{', streamed' if t.get('streamed') else ''}, 20 concurrent"
                            f" | {t['req_per_s']['tiered']} req/s, "
                            f"{t['proxy_cpu_ms_per_request']['tiered']} ms proxy CPU per request: **{t['ratio']}x** "
                            f"throughput, {t['cpu_ratio']}x by CPU | {t['req_per_s']['cheap']} req/s, "
                            f"{t['proxy_cpu_ms_per_request']['cheap']} ms CPU | >= 0.9x |")
        for key, how in (("accounting", ""), ("accounting_one_pass", " (one-pass)")):
            a = px.get(key)
            if not a:
                continue
            e = a["escalated"]
            rows.append(f"| LiteLLM's own logged events for one escalated request{how} | {e['logged_events']} event(s), "
                        f"cost {e['logged_cost_sum']:.3g} on key {', '.join(str(x['key_alias']) for x in e['events'])}"
                        f"; header x-litellm-response-cost {e['x-litellm-response-cost']} | routed cost "
                        f"{float(e['routed_cost']):.3g} | the routed cost, once, on the caller's key/team |")
            logged = ", ".join("{} in / {} out".format(v["prompt_tokens"], v["completion_tokens"])
                               for v in e["events"])
            rows.append(f"| tokens LiteLLM logs for that request{how} | {logged} | every attempt: "
                        f"{e['attempt_tokens']['input']} in / {e['attempt_tokens']['output']} out | all attempts |")
            x = a["exhausted"]
            failed = ", ".join("{}, cost {:.3g} (finalized: {}) on key {}, team {}".format(
                v["event"], float(v["response_cost"] or 0), v["cost_finalized"], v["key_alias"], v["team_id"])
                for v in x["events"])
            rows.append(f"| a request whose ladder is exhausted (`on_exhausted: raise`, {x['status']}){how} | "
                        f"{x['logged_events']} event(s): {failed} | routed cost {float(x['routed_cost'] or 0):.3g} "
                        f"| every attempt charged to the caller |")
            rows.append(f"| LiteLLM's `routing_decision`{how} | {json.dumps(e['routing_decision'])} | - | filled |")
        u = px.get("unrouted_stream")
        if u:
            rows.append(f"| LiteLLM proxy, a model the hook does not route, streams of {u['chunks_per_stream']} chunks, "
                        f"{u['concurrency']} concurrent: a proxy that loads the hook vs one that does not | "
                        f"{u['streams_per_s']['hooked']} streams/s: **{u['ratio']}x** | "
                        f"{u['streams_per_s']['plain']} streams/s | no cost to what it does not route |")
        s = px.get("start")
        if s:
            first = s["first_two_requests_ms"]
            rows.append(f"| LiteLLM proxy start, with / without the hook; first two requests | "
                        f"{s['with_hook_s']} s / {s['without_hook_s']} s; " + "; ".join(
                            f"{k}: {v}" for k, v in first.items()) + " ms | - | first request as fast as the next |")
    ls = results.get("langsmith")
    if ls:
        rows.append("| LangSmith runs of an escalated request | " + ", ".join(
            f"{r['name']} ({r['run_type']}, {r['ls_model_name']}, {r['tokens']} tokens)" for r in ls["runs"])
            + " | - | each attempt priceable (its real model name) |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--model", type=Path, help="a classifier model from tiered-router calibrate, for the "
                                                   "cheap/frontier ladder (default: calibrate one now)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--skip-proxy", action="store_true")
    parser.add_argument("--only", default="decisions,langchain,langsmith,import,sqlite,proxy")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "overhead")
    args = parser.parse_args()
    only = set(args.only.split(",")) - ({"proxy"} if args.skip_proxy else set())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model or calibrated_model(work, args.data)
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
                                   "quick": args.quick}
        steps: dict[str, Callable[[], Any]] = {
            "decisions": lambda: decision_rows(model, args.data, args.quick),
            "langchain": lambda: langchain_rows(model, args.data, args.quick),
            "langsmith": langsmith_row,
            "import": lambda: import_rows(args.quick),
            "sqlite": lambda: sqlite_row(args.quick),
            "proxy": lambda: {**proxy_rows(args.quick, work),
                              "unrouted_stream": unrouted_stream_row(args.quick, work)},
        }
        for name, step in steps.items():
            if name in only:
                t0 = time.perf_counter()
                results[name] = step()
                print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results["machine"]["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


def calibrated_model(work: Path, data: Path) -> Path:
    """``tiered-router calibrate`` on RouteLLM's GSM8K recordings, for the cheap/frontier ladder."""
    import yaml

    config, out = work / "router.yaml", work / "router_model.npz"
    config.write_text(yaml.safe_dump({"tiers": TWO_TIERS, "telemetry": {"sinks": []}}))
    subprocess.run([sys.executable, "-m", "langchain_tiered_router.cli", "calibrate", "--config", str(config),
                    "--data", str(data / "routellm" / "gsm8k" / "gsm8k_responses.csv"), "--format", "routellm",
                    "--policy", "classifier", "--out", str(out)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return out


if __name__ == "__main__":
    main()
