"""Where the proxy hook's extra CPU goes, read from a sampling profiler in one run.

    python -m pip install py-spy && python benchmarks/proxy_profile.py [--seconds 15] [--rounds 4]

A real LiteLLM proxy (the hook and the ``tiered_router`` provider loaded) on the
Bedrock-wire emulator, under 20 concurrent clients: model ``tiered`` (served by cheap,
its JSON gate passes) and the cheap deployment called directly, profiled in alternating
rounds by py-spy with ``--gil`` (only the thread holding the GIL is sampled, so time spent waiting
for it is not counted as work). Each row is samples per request in the frames that tell
the two paths apart; a frame that appears twice in one stack (the nested call inside the
outer one) counts once. Writes ``benchmarks/results/proxy_profile.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import overhead_bench as ob  # the emulator process, its script, the proxy configs, the prompt

from tests.litellm._proc import _Proxy, _stop

OUT = ob.HERE / "results"
RATE = 200  # samples per second
# (label, a regular expression on "function (file)"): the frames that separate the paths
FRAMES = (
    ("the whole proxy process", None),
    ("the HTTP app (FastAPI and the proxy's middleware)", r"^FastAPI\.__call__ "),
    # LiteLLM's Router: deployment choice, cooldowns, usage, then litellm.acompletion
    ("litellm's router call (the outer one and any nested one)", r"^(Router|RustCore)\.acompletion "),
    ("litellm.acompletion (the outer call and any nested one)", r"^acompletion \(litellm/main\.py\)"),
    ("the tiered_router provider", r"^TieredRouterProvider\.acompletion "),
    ("its tier call: router.acompletion on the cheap group", r"^LiteLLMRouterBackend\.acall "),
    ("LiteLLM's success logging", r"^Logging\.async_success_handler "),
)


def frame_samples(raw: Path) -> collections.Counter[str]:
    """Inclusive samples of each of ``FRAMES`` in a py-spy raw profile."""
    hits: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        names = {re.sub(r" \((.*?):\d+\)", lambda m: f" ({m.group(1).split('site-packages/')[-1]})", f)
                 for f in stack.split(";")}
        for label, pattern in FRAMES:
            if pattern is None or any(re.search(pattern, n) for n in names):
                hits[label] += int(count)
    return hits


async def _load(base: str, model: str, n: int, concurrency: int = 20) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer sk-ops"}, timeout=120) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                r = await client.post("/chat/completions", json={
                    "model": model, "messages": [{"role": "user", "content": ob.PROMPT}]})
                r.raise_for_status()

        await asyncio.gather(*(one() for _ in range(n)))


def profile(proxy: Any, model: str, seconds: int, work: Path) -> tuple[collections.Counter[str], int, float]:
    """One round: (samples per frame, requests served, seconds) for ``model`` under load."""
    raw = work / f"{model}.raw"
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(proxy.proc.pid), "--format", "raw", "-o", str(raw),
                            "--duration", str(seconds), "--rate", str(RATE), "--nonblocking", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    requests, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds - 1:
        asyncio.run(_load(proxy.url, model, 100))
        requests += 100
    elapsed = time.perf_counter() - started
    if spy.wait() != 0 or not raw.exists():
        raise SystemExit("py-spy could not profile the proxy (it needs ptrace: run as the proxy's user or root)")
    return frame_samples(raw), requests, elapsed


def interleaved(proxy: Any, seconds: int, rounds: int, work: Path) -> dict[str, Any]:
    """Both models warmed, then profiled in alternating order, round after round."""
    for model in ("cheap", "tiered"):
        asyncio.run(_load(proxy.url, model, 300))
    samples = {m: collections.Counter() for m in ("cheap", "tiered")}
    served = {m: [0, 0.0] for m in ("cheap", "tiered")}
    for r in range(rounds):
        for model in (("cheap", "tiered") if r % 2 == 0 else ("tiered", "cheap")):
            hits, requests, elapsed = profile(proxy, model, seconds, work)
            samples[model].update(hits)
            served[model][0] += requests
            served[model][1] += elapsed
    return {m: {"requests": served[m][0], "req_per_s": round(served[m][0] / served[m][1], 1),
                "samples_per_request": {label: round(samples[m][label] / served[m][0], 3) for label, _ in FRAMES}}
            for m in samples}


def run(seconds: int, rounds: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp())
    with ob.emulator_process(ob.SCRIPT) as url:
        config, _ = ob.proxy_configs(url, work)
        proxy = _Proxy(config, work, {"PYTHONPATH": str(ob.REPO)})
        try:
            proxy.wait_ready(300)
            out = interleaved(proxy, seconds, rounds, work)
        finally:
            _stop(proxy.proc)
            shutil.rmtree(work, ignore_errors=True)
    return {"rate_hz": RATE, "seconds_per_round": seconds, "rounds": rounds, "concurrency": 20, **out}


def markdown(result: dict[str, Any]) -> str:
    ms = 1000 / result["rate_hz"]
    cheap, tiered = result["cheap"]["samples_per_request"], result["tiered"]["samples_per_request"]
    lines = [f"py-spy --gil at {result['rate_hz']} Hz, {result['rounds']} interleaved rounds of "
             f"{result['seconds_per_round']} s per model, 20 concurrent clients; "
             f"cheap {result['cheap']['req_per_s']} req/s, tiered {result['tiered']['req_per_s']} req/s",
             "", "| frame | cheap called directly: samples (ms) per request | tiered | difference |", "|---|---|---|---|"]
    for label, _ in FRAMES:
        a, b = cheap[label], tiered[label]
        lines.append(f"| {label} | {a:.3f} ({a * ms:.2f}) | {b:.3f} ({b * ms:.2f}) | {b - a:+.3f} ({(b - a) * ms:+.2f}) |")
    whole = "the whole proxy process"
    router, provider = "litellm's router call (the outer one and any nested one)", "the tiered_router provider"
    lines += ["", f"At 0.9x of the direct request's work the routed one would take {cheap[whole] / 0.9:.2f} "
              f"samples; it takes {tiered[whole]:.2f}. Its nested tier call alone takes "
              f"{tiered['its tier call: router.acompletion on the cheap group']:.2f} (the direct request's whole "
              f"router call: {cheap[router]:.2f}), and the outer router call that reaches the provider "
              f"{tiered[router] - tiered[provider]:.2f} around it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15, help="per round and model")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT / "proxy_profile", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: python -m pip install py-spy")
    result = run(args.seconds, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    sys.stdout.write(markdown(result))


if __name__ == "__main__":
    main()
