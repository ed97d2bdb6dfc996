"""The ``tiered-router`` command line: demo, report, eval, calibrate, emulator.

Each command lives in its own module with a ``register(app)`` function, so importing
the CLI loads no command's heavy dependencies until that command runs.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

__all__ = ["app", "main"]

app = typer.Typer(help="Route Bedrock requests to the cheapest tier that clears your quality bar.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)



@app.callback()
def _root() -> None:
    """Route Bedrock requests to the cheapest tier that clears your quality bar."""


_COMMAND_MODULES = ("demo", "report", "evaluate", "emulator")

for _name in _COMMAND_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    app()
