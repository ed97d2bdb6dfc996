"""The CLI's command group: a usage error (a bad option value, an unknown option) is one
line on stderr and exit code 2, like every other error of the CLI, not a framed box."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as _click_errors

__all__ = ["OneLineErrorsGroup"]

# click < 8.2 shows the help for a bare command without an exception of its own
_NO_ARGS = getattr(_click_errors, "NoArgsIsHelpError", ())
_ABORT = getattr(_click_errors, "Abort", typer.Abort)


class OneLineErrorsGroup(TyperGroup):
    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as exc:
            print(exc.format_message(), file=sys.stderr)
            sys.exit(exc.exit_code)
        except _click_errors.ClickException as exc:
            if not standalone_mode:
                raise
            message = " ".join(exc.format_message().split())
            print(f"tiered-router: error: {message} (see: {self._help_for(exc, args)})", file=sys.stderr)
            sys.exit(exc.exit_code)
        except _ABORT:
            if not standalone_mode:
                raise
            print("tiered-router: aborted", file=sys.stderr)
            sys.exit(1)
        if not standalone_mode:
            return rv
        # with standalone_mode=False an Exit(code) comes back as its code; commands return None
        sys.exit(rv if isinstance(rv, int) else 0)

    def _help_for(self, exc: Exception, args: Any) -> str:
        """The help command to read: the failing command's own when it is known."""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and ctx.parent is not None:
            names = []
            while ctx.parent is not None:  # the root's name is however the program was started
                names.append(ctx.info_name)
                ctx = ctx.parent
            return " ".join(["tiered-router", *reversed(names), "--help"])
        words = [a for a in (sys.argv[1:] if args is None else args) if not str(a).startswith("-")]
        path = []
        group: Any = self
        for word in words:  # `batch run --x` -> tiered-router batch run --help
            command = getattr(group, "commands", {}).get(word)
            if command is None:
                break
            path.append(word)
            group = command
        return " ".join(["tiered-router", *path, "--help"])
