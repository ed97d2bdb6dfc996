"""Where the CLI writes: output paths checked before the work, JSON to stdout or a file.

Every command that has a JSON form takes the same two options: ``--json`` prints it on
stdout (the human output then goes to stderr or is left out, so stdout parses), and
``--json-out FILE`` writes it to a file and says so.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["check_writable", "check_distinct", "checked_outputs", "emit_json", "said_written", "console", "UNTTY_WIDTH"]

# rich sizes tables to 80 columns when it writes to no terminal (a CI log, a file), and
# cuts the numbers of wide ones to "0.…"; $COLUMNS still wins
UNTTY_WIDTH = 160


def console(*, stderr: bool = False) -> Any:
    """The human output's console: the terminal's width, or ``UNTTY_WIDTH`` columns when
    the output goes to a file or a pipe."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty or os.environ.get("COLUMNS") else UNTTY_WIDTH)


def check_writable(path: Path | None, flag: str) -> None:
    """Fail before minutes of work, not after: a folder, a missing or read-only folder."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent
    if not parent.exists():
        raise ValueError(f"{flag} {path}: the folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: the file is not writable")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: the folder {parent} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b) or a.resolve() == b.resolve()
    except OSError:
        return False


def check_distinct(outputs: dict[str, Path | None], inputs: dict[str, Any]) -> None:
    """An output that names an input, or another output, would overwrite it (a report's
    JSON written over the telemetry it read, the results over the records): refused
    before the work. ``inputs`` that are not local paths (a database URL) are skipped."""
    named = [(flag, Path(p)) for flag, p in outputs.items() if p is not None]
    read = [(flag, Path(p)) for flag, p in inputs.items() if isinstance(p, (str, Path)) and "://" not in str(p)]
    for i, (flag, path) in enumerate(named):
        for other, source in read + named[:i]:
            if _same_file(path, source):
                raise ValueError(f"{flag} {path} is the file {other} names; writing it would overwrite "
                                 f"{'what this command reads' if (other, source) in read else 'the other'}: "
                                 "give another file")


def checked_outputs(json_out: Path | None, plot: Path | None, inputs: dict[str, Any] | None = None
                    ) -> Path | None:
    """Check ``--json-out`` and ``--plot`` before the work, against each other and the
    command's ``inputs``; returns the plot's real file name (``.png`` added to a name
    without a suffix)."""
    check_writable(json_out, "--json-out")
    if plot is not None:
        import importlib.util

        from ..analysis.report.plot import png_path

        if importlib.util.find_spec("matplotlib") is None:  # said now, not after the work
            raise ValueError("--plot needs matplotlib: pip install 'langchain-tiered-router[plot]'")

        check_writable(plot, "--plot")  # a folder is refused as given, not written beside as FOLDER.png
        plot = png_path(plot)
        check_writable(plot, "--plot")
    check_distinct({"--json-out": json_out, "--plot": plot}, inputs or {})
    return plot


def said_written(what: str, path: Path, *, stdout_is_json: bool = False) -> None:
    """One line naming the file written; on stderr when stdout carries JSON."""
    print(f"wrote {what} to {path}", file=sys.stderr if stdout_is_json else sys.stdout)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)  # Decimal money as a decimal string, paths


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and strict parsers refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return _finite(value.item())  # numpy scalars
    return value


def emit_json(data: Any, *, as_json: bool, json_out: Path | None) -> None:
    """``--json``: the document on stdout; ``--json-out FILE``: the file, and a line saying so."""
    text = json.dumps(_finite(data), indent=2, default=_plain, allow_nan=False)
    if as_json:
        print(text)
    if json_out is not None:
        try:
            json_out.write_text(text + "\n")
        except OSError as exc:
            raise OSError(f"cannot write --json-out {json_out}: {exc.strerror or exc}") from None
        said_written("the JSON", json_out, stdout_is_json=as_json)
