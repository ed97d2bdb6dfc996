"""One-line failures for the CLI: a reason on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import typer

from ..core.errors import RouterError

__all__ = ["about", "fail", "one_line_errors"]

# what the package's own ImportError for a missing extra says (``training needs
# scikit-learn: pip install 'langchain-tiered-router[ml]'``)
_EXTRA_HINT = "pip install 'langchain-tiered-router["


def fail(message: str, code: int = 2) -> "typer.Exit":
    message = " ".join(message.split())  # one line, even for a YAML parser's multi-line message
    print(f"tiered-router: error: {message}", file=sys.stderr)
    return typer.Exit(code)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn expected errors (bad config, missing file, bad data, an extra not installed)
    into a one-line exit 2."""
    try:
        yield
    except BrokenPipeError as exc:
        if not _stdout_closed():  # another pipe or socket broke: an error like any other
            raise fail(str(exc) or type(exc).__name__) from None
        # the reader left (``| head``): no error line, and nothing more written at exit
        # (stdout is pointed at /dev/null so the interpreter's last flush is quiet); exit
        # 1, as Python's documentation and rich's console do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(1) from None
    except (RouterError, OSError, ValueError) as exc:
        raise fail(str(exc) or type(exc).__name__) from None
    except ImportError as exc:  # an extra not installed, named with its install line; else a bug
        if _EXTRA_HINT not in str(exc):
            raise
        raise fail(str(exc)) from None
    except Exception as exc:
        # AWS said no, or could not be asked (no credentials, no endpoint): botocore's
        # errors, matched by module so that no command imports botocore to say so
        if not type(exc).__module__.startswith("botocore."):
            raise
        raise fail(f"AWS: {exc}" if str(exc) else f"AWS: {type(exc).__name__}") from None


@contextlib.contextmanager
def about(source: str) -> Iterator[None]:
    """Name the data a check on the whole set refused (a bad line names its own file)."""
    from ..analysis.eval.data import EvalDataError

    try:
        yield
    except EvalDataError as exc:
        raise EvalDataError(f"{source}: {exc}") from None


def _stdout_closed() -> bool:
    """Whether standard output's reader has gone: its pipe polls as broken (``POLLERR``)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture), no poll
        return True
