"""The recorded-outcomes file ``collect`` writes, so that a killed run loses only what
was in flight and a rerun skips what is done.

An item is written once it is complete (every tier asked, every answer graded): one
line appended, flushed and fsynced. A run killed mid-write leaves at most one torn last
line, which the next run cuts off. A new item goes straight into the file; an item the
file already holds, extended with more tiers, goes to ``<out>.pending`` and replaces its
old line when the run ends (one atomic ``os.replace``), so the file never holds an id
twice and ``eval`` / ``calibrate`` can read it at any moment. One run at a time: the file
is locked (``flock``) while a run writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from ...core.text_lines import json_text
from .decoding import utf8_lines
from .errors import OutcomesFileError

__all__ = ["OutcomesFile"]


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Records of a JSONL file, after cutting a torn last line off; (records, was cut)."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # the whole lines; a torn last line is cut once the rest is found good
    records = []
    for number, line in enumerate(utf8_lines(data[:keep], path, OutcomesFileError), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            raise OutcomesFileError(f"{path}:{number} is not JSON: not a file collect wrote; "
                                    "give another --out") from None
        if not isinstance(raw, dict) or "id" not in raw or not isinstance(raw.get("outcomes"), dict):
            raise OutcomesFileError(f"{path}:{number} is not a recorded-outcomes line with an id; "
                                    "give another --out")
        records.append(raw)
    cut = keep < len(data)
    if cut:
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return records, cut


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutcomesFile:
    """Open it, read what is done, ``append`` complete items, ``close`` to merge."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.pending = self.path.with_name(self.path.name + ".pending")
        self.records: dict[str, dict[str, Any]] = {}
        self.repaired = False
        self._main: IO[str] | None = None
        self._extra: IO[str] | None = None

    def open(self) -> dict[str, dict[str, Any]]:
        """Lock the file, cut torn lines, fold in a pending file left by a killed run."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._main = open(self.path, "a", encoding="utf-8")
        try:
            import fcntl

            fcntl.flock(self._main.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - no flock on this platform: one run at a time is on the user
            pass
        except OSError:
            self._main.close()
            self._main = None
            raise OutcomesFileError(f"{self.path} is being written by another collect run") from None
        main, cut_main = _read_lines(self.path)
        extra, cut_extra = _read_lines(self.pending)
        self.repaired = cut_main or cut_extra
        self.records = {}
        for record in main:
            if str(record["id"]) in self.records:
                raise OutcomesFileError(f"{self.path} holds id {record['id']!r} twice; give another --out")
            self.records[str(record["id"])] = record
        for record in extra:
            self.records[str(record["id"])] = record
        if extra:
            self._rewrite()
        return dict(self.records)

    def peek(self) -> dict[str, dict[str, Any]]:
        """What is done, read without creating, locking or repairing anything (a dry run)."""
        records: dict[str, dict[str, Any]] = {}
        for path in (self.path, self.pending):
            if not path.exists():
                continue
            data = path.read_bytes()
            whole = data[: data.rfind(b"\n") + 1]  # a torn last line is left for a real run to cut
            for line in utf8_lines(whole, path, OutcomesFileError):
                if line.strip():
                    try:
                        raw = json.loads(line)
                    except ValueError:
                        raise OutcomesFileError(f"{path} holds a line that is not JSON; give another --out") from None
                    if isinstance(raw, dict) and "id" in raw:
                        records[str(raw["id"])] = raw
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one complete item durably (a kill after this returns does not lose it)."""
        key = str(record["id"])
        line = json_text(record) + "\n"
        if key in self.records:
            if self._extra is None:
                self._extra = open(self.pending, "a", encoding="utf-8")
            target = self._extra
        else:
            assert self._main is not None, "open() first"
            target = self._main
        target.write(line)
        target.flush()
        os.fsync(target.fileno())
        self.records[key] = record

    def close(self) -> None:
        """Merge extended items into the file and release the lock."""
        if self._extra is not None:
            self._extra.close()
            self._extra = None
            self._rewrite()
        if self._main is not None:
            self._main.close()  # closing releases the lock
            self._main = None

    def _rewrite(self) -> None:
        """Replace the file with one line per id (file order kept, extended items in place)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        order, _ = _read_lines(self.path)
        seen = set()
        with open(tmp, "w", encoding="utf-8") as fh:
            for old in order:
                key = str(old["id"])
                seen.add(key)
                fh.write(json_text(self.records[key]) + "\n")
            for key, record in self.records.items():
                if key not in seen:
                    fh.write(json_text(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path)
        self.pending.unlink(missing_ok=True)
        if self._main is not None:  # keep appending to (and holding the lock on) the new file
            old, self._main = self._main, open(self.path, "a", encoding="utf-8")
            with contextlib.suppress(ImportError, OSError):
                import fcntl

                fcntl.flock(self._main.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            old.close()

    def __enter__(self) -> "OutcomesFile":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
