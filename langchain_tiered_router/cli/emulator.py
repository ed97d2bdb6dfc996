"""``tiered-router emulator``: serve the local Bedrock-wire emulator from a script."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import fail, one_line_errors

__all__ = ["register"]


def emulator(
    script: Optional[Path] = typer.Option(None, "--script", help="YAML/JSON script of answers per model id."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(0, min=0, max=65535, help="Port (0-65535); 0 picks a free one."),
    s3_endpoint_url: Optional[str] = typer.Option(
        None, "--s3-endpoint-url", help="S3 API that batch inference jobs read and write (e.g. a moto server)."),
) -> None:
    """Serve Converse, ConverseStream, InvokeModel and batch jobs on HTTP until Ctrl-C; prints the URL."""
    from ..emulator import serve_forever

    if script is not None and not script.is_file():
        raise fail(f"script not found: {script}")
    with one_line_errors():
        serve_forever(script, host, port, s3_endpoint_url=s3_endpoint_url)


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)
