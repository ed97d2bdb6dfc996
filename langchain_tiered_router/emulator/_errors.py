"""Errors the emulator raises to its Python caller (never sent on the wire).

    RouterError                      (langchain_tiered_router.core.errors)
    └── EmulatorError                the emulator cannot do what was asked
        ├── EmulatorStateError       e.g. ``url`` read before ``start()``
        ├── FaultSpecError           an unknown fault name or parameter (also a ValueError)
        └── ScriptError              a script that cannot be used (also a ConfigError:
                                     carries the key ``path`` and the ``source`` file)

What the emulator answers to an HTTP client is a Bedrock-shaped error reply, built in
``_wire_errors``; these classes are for the test author who drives the emulator.
"""

from __future__ import annotations

from langchain_tiered_router.core.errors import ConfigError, RouterError

__all__ = ["EmulatorError", "EmulatorStateError", "FaultSpecError", "ScriptError"]


class EmulatorError(RouterError):
    """Base of every error raised by the Bedrock emulator."""


class EmulatorStateError(EmulatorError):
    """The emulator is not in a state where this call makes sense."""


class FaultSpecError(EmulatorError, ValueError):
    """A fault to inject names an unknown kind or parameter."""


class ScriptError(ConfigError, EmulatorError):
    """A script (or a replay file it names) that cannot be used; ``path`` names the key."""
