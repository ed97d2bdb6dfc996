"""The public surface is pinned, and dependencies point one way: integrations -> core."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_tiered_router
import langchain_tiered_router.core

PACKAGE = Path(langchain_tiered_router.__file__).parent

EXPECTED_TOP_LEVEL = {
    "BedrockEmulator", "ConfidenceGate", "ConfigError", "Gate", "JsonSchemaGate", "LadderExhaustedError",
    "PydanticGate", "RegexGate", "Router", "RouterConfig", "RouterError", "RouteRequest", "RoutingResult",
    "RuleGate", "SelfGradeGate", "TieredChatBedrock", "TierNotAllowedError", "TransportError",
    "GateOutputParser", "with_tier_fallbacks", "TieredRouterCallbackHandler",
}


def test_top_level_all_is_pinned_and_every_name_resolves():
    assert set(langchain_tiered_router.__all__) == EXPECTED_TOP_LEVEL
    for name in langchain_tiered_router.__all__:
        assert getattr(langchain_tiered_router, name) is not None


def test_core_all_names_resolve():
    for name in langchain_tiered_router.core.__all__:
        assert hasattr(langchain_tiered_router.core, name), name


def test_no_core_module_imports_an_integration():
    """A static check over every core file, including lazily imported ones."""
    forbidden = ("langchain_core", "langchain_aws", "langchain", "litellm", "litellm_hooks",
                 "langchain_tiered_router.langchain", "langchain_tiered_router.emulator",
                 "langchain_tiered_router.analysis", "langchain_tiered_router.cli",
                 "langchain_tiered_router.batch")
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                package = ["langchain_tiered_router", *path.relative_to(PACKAGE).parent.parts]
                base = package[: len(package) - (node.level - 1)]
                names = [".".join(base + ([node.module] if node.module else []))]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert offenders == []
