"""The request pipeline: raw HTTP request in, Bedrock-shaped ``Reply`` out.

Kept apart from the HTTP server so that every step (path, body, routing, faults,
answer, wire shape) is plain Python; the server only moves bytes. Nothing a client
sends can make it raise: failures become a ``ValidationException`` reply. Paths under
``/model-invocation-job`` go to the batch-inference control plane (``_control_plane``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import unquote

from ._answer import Answer, Responder
from ._control_plane import CONTROL_PLANE_PREFIX, ControlPlane, operation_of
from ._conversation import Conversation, parse_converse_request
from ._converse_shapes import converse_body, converse_stream_events
from ._eventstream import corrupt_frame, event_frame, exception_frame, reframe_with_invalid_utf8, with_invalid_utf8
from ._faults import ERROR_CODES, Fault, FaultBook
from ._invoke_families import family_for
from ._request_limits import check_converse_request
from ._routing import body_model_id, route
from ._script import EmulatorScript
from ._wire_errors import WireError

__all__ = ["BedrockService", "EmulatorRequest", "Reply", "error_reply"]

logger = logging.getLogger(__name__)

_OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "count-tokens": "CountTokens",
}
_STREAMING = {"ConverseStream", "InvokeModelWithResponseStream"}
_EVENTSTREAM = "application/vnd.amazon.eventstream"
_DEFAULT_MESSAGES = {  # by error code; an in-stream member name is the code in camelCase
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "ModelNotReadyException": "Model is not ready to serve inference requests.",
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "ModelErrorException": "The model encountered an error processing the request.",
    "ModelStreamErrorException": "The model stream failed while generating the response.",
    "ValidationException": "Input is too long for requested model.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
}


class EmulatorRequest(NamedTuple):
    """One request as received: operation name, model id (decoded), JSON body, headers."""

    operation: str
    model_id: str
    body: Any
    headers: dict[str, str]


@dataclass
class Reply:
    """What to send back. ``frames`` set means an event stream, sent chunked."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: list[bytes] | None = None
    cut_after: int | None = None  # close the connection after this many frames
    delay: float = 0.0
    stall: tuple[int, float] | None = None  # pause (after this many frames, for this many seconds)


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def error_reply(error: WireError) -> Reply:
    headers = {"Content-Type": "application/json",
               "x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
               **error.headers}
    return Reply(error.status, headers, _json_bytes({"message": error.message}))


class BedrockService:
    """Answers Bedrock Runtime requests from a script, with injected faults."""

    def __init__(self, script: EmulatorScript, faults: FaultBook, record: Callable[[EmulatorRequest], None],
                 *, responder: Responder | None = None, control_plane: ControlPlane | None = None):
        self.script = script
        self.faults = faults
        self.responder = responder or Responder(script)
        self.control_plane = control_plane
        self._record = record
        self._hold_cond = threading.Condition()
        self._held: dict[int, int] = {}  # calls held so far, by hold fault

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        started = time.monotonic()
        try:
            reply = self._handle(method, raw_path, headers, body, started)
        except WireError as error:
            reply = error_reply(error)
        except Exception as exc:  # a request the emulator cannot read must not kill it
            logger.debug("emulator refused a request", exc_info=True)
            reply = error_reply(WireError.validation(f"Malformed input request: {type(exc).__name__}: {exc}"))
        reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        return reply

    def _handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes,
                started: float) -> Reply:
        if raw_path.startswith(CONTROL_PLANE_PREFIX):
            return self._control(method, raw_path, headers, body)
        parts = raw_path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in _OPERATIONS or method != "POST":
            raise WireError("UnknownOperationException", f"Unknown operation {method} {raw_path}")
        operation, model_id = _OPERATIONS[parts[3]], unquote(parts[2])
        try:
            parsed: Any = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            parsed = body.decode("utf-8", "replace")
        self._record(EmulatorRequest(operation, model_id, parsed,
                                     {k.lower(): v for k, v in headers.items()}))
        if not isinstance(parsed, dict):
            raise WireError.validation("Malformed input request, please reformat your input and try again.")
        if operation == "CountTokens":
            return self._count_tokens(model_id, parsed)
        conv = self._conversation(operation, model_id, parsed)
        chosen = route(self.script, model_id, conv.last_user_text)
        fault = self.faults.take(operation in _STREAMING, model_id, chosen.model_id, operation=operation)
        if fault is not None and fault.kind in ERROR_CODES:
            code = ERROR_CODES[fault.kind]
            after = fault.params.get("retry_after")
            raise WireError(code, fault.params.get("message") or _DEFAULT_MESSAGES[code],
                            headers={"Retry-After": str(after)} if after is not None else None)
        answer = self.responder.answer(conv, chosen)
        if fault is not None and fault.kind == "guardrail":  # the guardrail answers in the model's place
            answer = dataclasses.replace(answer, text=fault.params["message"], tool_call=None,
                                         stop_reason="guardrail_intervened", stop_sequence=None,
                                         usage=dataclasses.replace(answer.usage, output_tokens=0))
            fault = None
        latency_ms = max(1, int((time.monotonic() - started) * 1000))
        reply = self._reply(operation, model_id, answer, latency_ms)
        model = self.script.models.get(chosen.model_id)
        if model is not None and model.latency_s:
            reply.delay = model.latency_s
        return self._apply_fault(reply, fault, operation) if fault is not None else reply

    def _control(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """The batch-inference control plane (``bedrock`` client), when the emulator has one."""
        if self.control_plane is None:
            raise WireError("UnknownOperationException", f"Unknown operation {method} {raw_path}")
        try:
            parsed: Any = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            raise WireError.validation("The request body is not valid JSON.") from None
        operation, identifier = operation_of(method, raw_path.split("?", 1)[0])
        model_id = str(parsed.get("modelId", "")) if isinstance(parsed, dict) else ""
        self._record(EmulatorRequest(operation, model_id or identifier or "", parsed,
                                     {k.lower(): v for k, v in headers.items()}))
        _, data = self.control_plane.handle(method, raw_path, parsed)
        return Reply(200, {"Content-Type": "application/json"}, _json_bytes(data))

    def _conversation(self, operation: str, model_id: str, body: dict[str, Any]) -> Conversation:
        if operation in ("Converse", "ConverseStream"):
            check_converse_request(body)  # the service model's ranges and patterns, checked first as Bedrock does
            return parse_converse_request(body)
        return family_for(body_model_id(self.script, model_id)).parse(body)

    def _reply(self, operation: str, model_id: str, answer: Answer, latency_ms: int) -> Reply:
        if operation == "Converse":
            return Reply(200, {"Content-Type": "application/json"}, _json_bytes(converse_body(answer, latency_ms)))
        if operation == "ConverseStream":
            frames = [event_frame(kind, payload) for kind, payload in converse_stream_events(answer, latency_ms)]
            return Reply(200, {"Content-Type": _EVENTSTREAM}, frames=frames)
        family = family_for(body_model_id(self.script, model_id))
        if operation == "InvokeModel":
            headers = {"Content-Type": "application/json",
                       "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
                       "X-Amzn-Bedrock-Input-Token-Count": str(answer.usage.input_tokens),
                       "X-Amzn-Bedrock-Output-Token-Count": str(answer.usage.output_tokens)}
            if answer.usage.cache_read is not None:
                headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(answer.usage.cache_read)
                headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(answer.usage.cache_write or 0)
            return Reply(200, headers, _json_bytes(family.render(answer, latency_ms)))
        frames = [event_frame("chunk", {"bytes": base64.b64encode(_json_bytes(chunk)).decode("ascii")})
                  for chunk in family.stream(answer, latency_ms)]
        return Reply(200, {"Content-Type": _EVENTSTREAM, "X-Amzn-Bedrock-Content-Type": "application/json"},
                     frames=frames)

    def _hold(self, fault: Fault, calls: int, seconds: float) -> None:
        """Wait until ``calls`` calls are held by this fault (or ``seconds`` pass)."""
        with self._hold_cond:
            self._held[id(fault)] = self._held.get(id(fault), 0) + 1
            self._hold_cond.notify_all()
            deadline = time.monotonic() + seconds
            while self._held[id(fault)] < calls:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._hold_cond.wait(left)

    def _apply_fault(self, reply: Reply, fault: Fault, operation: str) -> Reply:
        params = fault.params
        if fault.kind == "slow":
            reply.delay = float(params["seconds"])
        elif fault.kind == "hold":
            self._hold(fault, int(params["calls"]), float(params["seconds"]))
        elif fault.kind == "malformed" and params["mode"] == "invalid_utf8" and reply.frames is not None:
            index = next((i for i, f in enumerate(reply.frames) if b'"text":' in f), len(reply.frames) - 1)
            reply.frames[index] = reframe_with_invalid_utf8(reply.frames[index])
        elif fault.kind == "malformed" and params["mode"] == "invalid_utf8":
            reply.body = with_invalid_utf8(reply.body)
        elif fault.kind == "malformed" and reply.frames is not None:
            index = min(1, len(reply.frames) - 1)
            reply.frames = reply.frames[:index] + [corrupt_frame(reply.frames[index])]
        elif fault.kind == "malformed" and params["mode"] == "tool_input_string":
            reply.body = _tool_inputs_as_strings(reply.body)
        elif fault.kind == "malformed" and params["mode"] == "missing_output":
            reply.body = _json_bytes({"stopReason": "end_turn"} if operation == "Converse" else {})
        elif fault.kind == "malformed":
            reply.body = reply.body[: max(1, len(reply.body) // 2)]  # JSON cut in half
        elif fault.kind == "stream_cut" and reply.frames is not None:
            reply.cut_after = int(params["after_events"])
        elif fault.kind == "stream_stall" and reply.frames is not None:
            reply.stall = (int(params["after_events"]), float(params["seconds"]))
        elif fault.kind == "stream_error" and reply.frames is not None:
            member = str(params["exception"])  # a member of this stream's union (checked by Fault.make)
            message = params.get("message") or _DEFAULT_MESSAGES[member[:1].upper() + member[1:]]
            extra: dict[str, Any] = {}
            if member == "modelStreamErrorException":
                extra = {"originalStatusCode": 500, "originalMessage": message}
            reply.frames = reply.frames[: int(params["after_events"])] + [exception_frame(member, message, **extra)]
        return reply

    def _count_tokens(self, model_id: str, body: dict[str, Any]) -> Reply:
        given = body.get("input") or {}
        if "converse" in given:
            conv = parse_converse_request({**given["converse"]})
        elif "invokeModel" in given:
            raw = base64.b64decode(given["invokeModel"]["body"])
            conv = family_for(body_model_id(self.script, model_id)).parse(json.loads(raw))
        else:
            raise WireError.validation("input must hold 'converse' or 'invokeModel'.")
        tokens = max(1, -(-conv.input_chars // 4))
        return Reply(200, {"Content-Type": "application/json"}, _json_bytes({"inputTokens": tokens}))


def _tool_inputs_as_strings(body: bytes) -> bytes:
    """A Converse reply whose every ``toolUse.input`` is its JSON text, not the object:
    a model that breaks the tool-call contract (seen as a string, or a list, in the wild)."""
    reply = json.loads(body)
    for block in ((reply.get("output") or {}).get("message") or {}).get("content") or []:
        if isinstance(block, dict) and isinstance(block.get("toolUse"), dict):
            block["toolUse"]["input"] = json.dumps(block["toolUse"].get("input"))
    return _json_bytes(reply)
