"""The ``tiered-router`` command line: demo, report, collect, estimate, eval, calibrate, emulator, batch.

Each command lives in its own module with a ``register(app)`` function, so importing
the CLI loads no command's heavy dependencies until that command runs.
"""

from __future__ import annotations

import typer

from . import batch, collect, demo, emulator, estimate, evaluate, report
from .app_group import OneLineErrorsGroup

__all__ = ["app", "main"]

app = typer.Typer(help="Route Bedrock requests to the cheapest tier that clears your quality bar.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  cls=OneLineErrorsGroup)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"tiered-router {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
) -> None:
    """Route Bedrock requests to the cheapest tier that clears your quality bar."""


# Each module imports only typer at the top; its command's own imports run when it runs.
for _module in (demo, report, collect, estimate, evaluate, emulator, batch):
    _module.register(app)


def main() -> None:
    app()
