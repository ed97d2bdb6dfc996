"""A local Amazon Bedrock Runtime emulator that speaks the real wire protocol.

Real botocore clients (and LangChain's ``ChatBedrockConverse`` / ``ChatBedrock`` on
top of them) talk to it over HTTP: scripted answers per model id, prompt routers,
replayed recordings, injected faults, and a log of every request::

    with BedrockEmulator({"models": {"amazon.nova-micro-v1:0": {"default": "hi"}}}) as emu:
        client = emu.client()
        client.converse(modelId="amazon.nova-micro-v1:0", messages=[...])
"""

from ._emulator import BedrockEmulator, serve_forever
from ._errors import EmulatorError, EmulatorStateError, FaultSpecError, ScriptError
from ._faults import Fault, FaultKind
from ._script import EmulatorScript, ModelScript, PromptRouterScript, RouteRule, Rule, ToolUseAnswer
from ._service import EmulatorRequest

__all__ = [
    "BedrockEmulator",
    "EmulatorError",
    "EmulatorRequest",
    "EmulatorScript",
    "EmulatorStateError",
    "Fault",
    "FaultKind",
    "FaultSpecError",
    "ModelScript",
    "PromptRouterScript",
    "RouteRule",
    "Rule",
    "ScriptError",
    "ToolUseAnswer",
    "serve_forever",
]
