"""The emulator's public surface is pinned; importing it has no side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import langchain_tiered_router.emulator as emulator

EXPECTED = {
    "BedrockEmulator", "EmulatorError", "EmulatorRequest", "EmulatorScript", "EmulatorStateError", "Fault",
    "FaultKind", "FaultSpecError", "ModelScript", "PromptRouterScript", "RouteRule", "Rule", "ScriptError",
    "ToolUseAnswer", "serve_forever",
}


def test_all_is_pinned() -> None:
    assert set(emulator.__all__) == EXPECTED
    assert all(hasattr(emulator, name) for name in EXPECTED)


def test_import_does_not_load_boto3_or_langchain() -> None:
    code = ("import sys, langchain_tiered_router.emulator; "
            "print(sorted(m for m in ('boto3', 'botocore', 'langchain_core', 'langchain_aws') if m in sys.modules))")
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo,
                         env={**os.environ, "PYTHONPATH": str(repo)}).stdout
    assert out.strip() == "[]"


def test_errors_sit_under_the_router_base() -> None:
    from langchain_tiered_router.core.errors import ConfigError, RouterError

    assert issubclass(emulator.ScriptError, ConfigError)
    assert issubclass(emulator.FaultSpecError, ValueError)
    assert issubclass(emulator.EmulatorError, RouterError)


def test_url_before_start_is_a_state_error() -> None:
    import pytest

    emu = emulator.BedrockEmulator()
    with pytest.raises(emulator.EmulatorStateError):
        emu.url
    emu.stop()  # idempotent, even before start
    with emu:
        url = emu.url
        emu.start()
        assert emu.url == url
    assert not emu.running


def test_busy_port_is_a_state_error() -> None:
    import pytest

    with emulator.BedrockEmulator() as first:
        with pytest.raises(emulator.EmulatorStateError, match="cannot listen"):
            emulator.BedrockEmulator(port=first.port).start()
