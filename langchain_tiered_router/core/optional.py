"""Packages of an extra, imported when a feature needs them, with the extra named.

A missing one is an ``ImportError`` whose message holds the install line, which the CLI
turns into its one-line error (``cli.errors.one_line_errors``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["import_boto3"]


def import_boto3() -> Any:
    """boto3, or an ``ImportError`` naming the extra that brings it."""
    try:
        import boto3
    except ImportError as exc:
        raise ImportError("calling Bedrock needs boto3: pip install 'langchain-tiered-router[batch]' "
                          "(or [langchain], which brings it too)") from exc
    return boto3
