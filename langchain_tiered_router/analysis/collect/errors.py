"""Errors of ``tiered-router collect``, under the router's one base.

    RouterError                      (langchain_tiered_router.core.errors)
    └── CollectError                 a collection cannot start or go on
        ├── PromptsError             a prompts file (or telemetry store) that cannot be used;
        │                            the message names the file and line
        └── OutcomesFileError        an output file that cannot be resumed: not ours, graded
                                     another way, or locked by another run
"""

from __future__ import annotations

from ...core.errors import RouterError

__all__ = ["CollectError", "PromptsError", "OutcomesFileError"]


class CollectError(RouterError):
    """Base of every collect error."""


class PromptsError(CollectError, ValueError):
    """A prompts file that cannot be used; the message names the file and line."""


class OutcomesFileError(CollectError):
    """An output file that this run cannot resume."""
