"""The public surface is pinned, and dependencies point one way: integrations -> core."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_tiered_router
import langchain_tiered_router.core

PACKAGE = Path(langchain_tiered_router.__file__).parent

EXPECTED_TOP_LEVEL = {
    "ConfidenceGate", "ConfigError", "Gate", "JsonSchemaGate", "LadderExhaustedError",
    "PydanticGate", "RegexGate", "Router", "RouterConfig", "RouterError", "RouteRequest", "RoutingResult",
    "RuleGate", "SelfGradeGate", "TieredChatBedrock", "TierNotAllowedError", "TransportError",
    "GateOutputParser", "with_tier_fallbacks", "TieredRouterCallbackHandler",
}


def test_top_level_all_is_pinned_and_every_name_resolves():
    assert set(langchain_tiered_router.__all__) == EXPECTED_TOP_LEVEL
    for name in langchain_tiered_router.__all__:
        assert getattr(langchain_tiered_router, name) is not None


def test_test_doubles_live_in_the_testing_module():
    import langchain_tiered_router.testing as testing

    assert set(testing.__all__) == {"BedrockEmulator", "ScriptedBackend"}
    assert "BedrockEmulator" not in langchain_tiered_router.__all__
    from langchain_tiered_router.emulator import BedrockEmulator

    assert testing.BedrockEmulator is BedrockEmulator


def test_no_import_cycle_in_the_core():
    """Module-level imports of the core form no cycle (the sinks no longer import the
    SQLite and OTel sinks that import them; lazy imports inside functions are not counted:
    there are none left, and build -> engine is one way)."""
    graph: dict[str, set[str]] = {}
    for path in (PACKAGE / "core").rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(["langchain_tiered_router", *(parts[:-1] if parts[-1] == "__init__" else parts)])
        package = ["langchain_tiered_router", *path.relative_to(PACKAGE).parent.parts]
        deps = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
                deps.add(base)
                deps.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
        graph[name] = deps
    modules = set(graph)
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    return path + [dep]
                if dep not in seen and not dep.endswith("core") and not dep.endswith("telemetry"):
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
        return None

    cycles = [c for m in sorted(modules) if not m.endswith(("core", "telemetry")) for c in [cycle_from(m)] if c]
    assert cycles == []


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
