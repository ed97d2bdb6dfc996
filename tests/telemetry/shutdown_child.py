"""A process that routes requests until it is stopped, for the shutdown tests.

    python shutdown_child.py DB_PATH LOG_PATH threads|asyncio [durable] [shadow]

Before each request it appends ``started <id>`` to LOG_PATH, after it ``done <id>
<monotonic seconds>`` (one ``os.write`` on an O_APPEND file: lines never interleave).
It prints ``ready`` once 200 requests are done, then runs until a signal stops it.
With ``shadow`` half the requests served below the top tier are shadow-sampled, and
each shadow call takes 30 s: their records wait for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

from langchain_tiered_router.core.backends import Backend
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.pricing import Usage
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest, TierAnswer


def main() -> None:
    # Python's own Ctrl-C handler, even when the test runner was started in the background
    # (a shell starts background jobs with SIGINT ignored, and Python then keeps it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    db, log_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    durable, shadow = "durable" in sys.argv[4:], "shadow" in sys.argv[4:]
    config = {"tiers": [{"name": "cheap", "model_id": "x.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
                        {"name": "top", "model_id": "x.top", "price": {"input_per_mtok": 5, "output_per_mtok": 9}}],
              "gates": [{"kind": "regex", "pattern": "ok"}], "pinning": {"enabled": False},
              "telemetry": {"sinks": [{"kind": "sqlite", "path": db, "durable": durable,
                                       "flush_interval_s": 0.5}],
                            **({"shadow": {"fraction": 0.5, "seed": 1}} if shadow else {})}}
    router = build_router(config)

    def answer(request: RouteRequest) -> str:
        if "shadow_of" in request.metadata:
            time.sleep(30)  # a shadow call still running when the process is killed
            return "ok"
        time.sleep(0.002)
        return "ok" if int(request.request_id.rsplit("-", 1)[1]) % 3 else "no"

    class Answers(Backend):  # no lock around the answers (ScriptedBackend's would queue them behind a shadow)
        def call(self, tier, request):
            return TierAnswer(answer(request), Usage(5, 5))

    backend = Answers() if shadow else ScriptedBackend({"*": answer})
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    counter = iter(range(10**9))
    done = [0]
    ready = threading.Event()

    def note(text: str) -> None:
        os.write(fd, (text + "\n").encode())

    def one() -> None:
        rid = f"req-{next(counter)}"
        note(f"started {rid}")
        router.route(RouteRequest(text=rid, request_id=rid), backend)
        note(f"done {rid} {time.monotonic():.6f}")
        done[0] += 1
        if done[0] >= 200:
            ready.set()

    async def aone() -> None:
        rid = f"req-{next(counter)}"
        note(f"started {rid}")
        await router.aroute(RouteRequest(text=rid, request_id=rid), backend)
        note(f"done {rid} {time.monotonic():.6f}")
        done[0] += 1
        if done[0] >= 200 and not ready.is_set():
            ready.set()
            print("ready", flush=True)

    if mode == "threads":
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                one()

        workers = [threading.Thread(target=worker) for _ in range(8)]
        for w in workers:
            w.start()
        try:
            ready.wait()
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        finally:
            stop.set()
            for w in workers:
                w.join()
    else:
        async def run() -> None:
            async def loop() -> None:
                while True:
                    await aone()

            await asyncio.gather(*(loop() for _ in range(50)))

        asyncio.run(run())


if __name__ == "__main__":
    main()
