"""``from langchain_tiered_router import TieredChatBedrock`` has its real type under mypy,
not ``Any``: the lazy ``__getattr__`` of the package has ``TYPE_CHECKING`` imports beside
it, and ``py.typed`` ships in the wheel (pyproject's package-data)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

USER_CODE = '''
from langchain_tiered_router import JsonSchemaGate, RouterConfig, TieredChatBedrock, TieredRouterCallbackHandler

llm = TieredChatBedrock.from_config("examples/invoice_router.yaml")
reveal_type(llm)
reveal_type(JsonSchemaGate({"type": "object"}))
reveal_type(RouterConfig)
reveal_type(TieredRouterCallbackHandler.from_config("examples/invoice_router.yaml"))
'''


def test_public_names_are_typed_for_mypy(tmp_path):
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    (tmp_path / "user.py").write_text(USER_CODE)
    env = {**os.environ, "MYPYPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                           "--ignore-missing-imports", "--cache-dir", str(tmp_path / "cache"), "user.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    revealed = re.findall(r'Revealed type is "(.*)"', done.stdout)
    assert done.returncode == 0 and len(revealed) == 4, done.stdout + done.stderr
    assert revealed[0] == "langchain_tiered_router.langchain.chat_model.TieredChatBedrock"
    assert revealed[1] == "langchain_tiered_router.core.gates.JsonSchemaGate"
    assert revealed[2].startswith("def (") and revealed[2].endswith("-> langchain_tiered_router.core.config.RouterConfig")
    assert revealed[3] == "langchain_tiered_router.langchain.callbacks.TieredRouterCallbackHandler"


def test_py_typed_ships_with_the_package():
    import tomllib

    assert (REPO / "langchain_tiered_router" / "py.typed").exists() and (REPO / "litellm_hooks" / "py.typed").exists()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["langchain_tiered_router"] and "py.typed" in package_data["litellm_hooks"]
