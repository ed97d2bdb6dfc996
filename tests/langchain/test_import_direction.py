"""Dependencies point one way: the core imports neither LangChain nor LiteLLM."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import langchain_tiered_router.core
import langchain_tiered_router.core.build, langchain_tiered_router.core.engine
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith(('langchain', 'litellm'))
                        and not m.startswith('langchain_tiered_router'))))
"""


def test_core_import_pulls_in_no_langchain_or_litellm() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_integration_import_does_pull_in_langchain() -> None:
    """The probe can fail: the same check sees LangChain once the adapter is imported."""
    probe = PROBE.replace("import langchain_tiered_router.core\n", "import langchain_tiered_router.langchain\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "langchain_core" in loaded
    assert "langchain_aws" not in loaded  # loaded when a model is built, not at import
    assert not any(m.startswith("litellm") for m in loaded)
