"""``BedrockEmulator``: a local Bedrock Runtime endpoint for tests and demos.

Start it, point a real botocore client at ``emu.url`` with any credentials, and it
answers Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream and
CountTokens from a script, with faults injected on demand and every request logged.
The same URL serves the batch-inference control plane of the ``bedrock`` client
(Create/Get/List/StopModelInvocationJob); jobs read and write the S3 API at
``s3_endpoint_url`` (moto's server in the tests and the demo).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from ._errors import EmulatorStateError
from ._answer import Responder
from ._control_plane import ControlPlane
from ._faults import Fault, FaultBook
from ._http import EmulatorHTTPServer
from ._job_records import JobProcessor
from ._jobs import JobBook
from ._routing import route
from ._script import EmulatorScript
from ._service import BedrockService, EmulatorRequest

__all__ = ["BedrockEmulator", "serve_forever"]

ScriptLike = EmulatorScript | Mapping[str, Any] | str | os.PathLike[str] | None


def _as_script(script: ScriptLike) -> EmulatorScript:
    if isinstance(script, EmulatorScript):
        return script
    if script is None or isinstance(script, Mapping):
        return EmulatorScript.from_dict(script)
    return EmulatorScript.from_file(script)


class BedrockEmulator:
    """A Bedrock Runtime emulator on ``host:port`` (port 0 picks a free one).

    Use it as a context manager, or call ``start()``/``stop()`` (both idempotent).
    ``inject``/``clear_faults`` and ``requests``/``calls_for`` are safe from any thread.

    Batch inference jobs move one state per ``job_step_s`` seconds and are refused
    (Failed at validation) below ``batch_min_records`` or above ``batch_max_records``
    records, Bedrock's default quotas; ``jobs`` lists them and can ``hold()`` them.
    """

    def __init__(self, script: ScriptLike = None, *, host: str = "127.0.0.1", port: int = 0,
                 region: str = "us-east-1", s3_endpoint_url: str | None = None, job_step_s: float = 0.05,
                 batch_min_records: int = 100, batch_max_records: int = 50_000):
        self.script = _as_script(script)
        self.host = host
        self.region = region
        self.s3_endpoint_url = s3_endpoint_url
        self._port = port
        self._faults = FaultBook()
        self._requests: list[EmulatorRequest] = []
        self._lock = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._responder = Responder(self.script)
        processor = JobProcessor(self.script, self._responder, self._faults, s3_endpoint_url=s3_endpoint_url,
                                 region=region, min_records=batch_min_records, max_records=batch_max_records)
        self._jobs = JobBook(processor, region=region, step_s=job_step_s,
                             check_model=lambda model_id: route(self.script, model_id, ""))

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> "BedrockEmulator":
        with self._lock:
            if self._server is not None:
                return self
            service = BedrockService(self.script, self._faults, self._record, responder=self._responder,
                                     control_plane=ControlPlane(self._jobs))
            try:
                server = EmulatorHTTPServer((self.host, self._port), service)
            except OSError as exc:
                raise EmulatorStateError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"bedrock-emulator:{server.server_address[1]}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
            self._jobs.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._jobs.close()
        server.stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "BedrockEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        server = self._server
        if server is None:
            raise EmulatorStateError("the emulator is not running; call start() first")
        return int(server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port``, the ``endpoint_url`` for a bedrock-runtime client."""
        return f"http://{self.host}:{self.port}"

    def client(self, **config: Any) -> Any:
        """A real boto3 ``bedrock-runtime`` client for this emulator, with fake credentials.

        Keyword arguments go to ``botocore.config.Config`` (``read_timeout``, ``retries``...).
        """
        from ..core.optional import import_boto3

        boto3 = import_boto3()
        from botocore.config import Config

        return boto3.client("bedrock-runtime", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(**config) if config else None)

    def bedrock_client(self, **config: Any) -> Any:
        """A real boto3 ``bedrock`` (control plane) client for this emulator's batch jobs."""
        import boto3
        from botocore.config import Config

        return boto3.client("bedrock", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(**config) if config else None)

    @property
    def jobs(self) -> JobBook:
        """The batch inference jobs: ``list()``, ``get(arn)``, ``hold()``, ``release()``."""
        return self._jobs

    # faults ----------------------------------------------------------------------------
    def inject(self, fault: str, model_id: str | None = None, times: int | None = 1, *, probability: float = 1.0,
               **params: Any) -> Fault:
        """Make the next ``times`` matching calls fail with ``fault`` (see ``Fault``); with
        ``probability``, each matching call fails with that chance."""
        made = Fault.make(fault, model_id, times, probability=probability, **params)
        self._faults.add(made)
        return made

    @property
    def faults_taken(self) -> dict[str, int]:
        """How many calls each fault kind has hit so far."""
        return dict(self._faults.taken)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    # request log -----------------------------------------------------------------------
    def _record(self, request: EmulatorRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[EmulatorRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def calls_for(self, model_id: str) -> list[EmulatorRequest]:
        """Requests whose path named ``model_id``."""
        return [request for request in self.requests if request.model_id == model_id]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def _print_line(text: str) -> None:
    print(text, flush=True)


def serve_forever(script_path: str | os.PathLike[str] | None = None, host: str = "127.0.0.1", port: int = 0,
                  *, announce: Callable[[str], None] = _print_line, s3_endpoint_url: str | None = None,
                  job_step_s: float = 1.0) -> None:
    """Run an emulator until SIGINT or SIGTERM; ``announce`` gets its URL once it listens."""
    done = threading.Event()
    emulator = BedrockEmulator(Path(script_path) if script_path else None, host=host, port=port,
                               s3_endpoint_url=s3_endpoint_url, job_step_s=job_step_s)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        with emulator:
            announce(emulator.url)
            while not done.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sys.stdout.flush()
