"""Test doubles for code that uses the router: a local Bedrock-wire emulator and a
backend that answers from a script.

    from langchain_tiered_router.testing import BedrockEmulator, ScriptedBackend

Kept out of the top-level names: they are for tests and demos, not for serving.
"""

from __future__ import annotations

from .core.testing import ScriptedBackend
from .emulator import BedrockEmulator

__all__ = ["BedrockEmulator", "ScriptedBackend"]
