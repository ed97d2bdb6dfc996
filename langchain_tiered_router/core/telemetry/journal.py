"""A write-ahead journal for ``durable: true`` sinks: no acknowledged record is lost.

``append`` returns once the record's line is on disk (``fsync``). Callers arriving while
one fsync runs are committed together by the next one (group commit), so a fsync costs
one wait per batch of concurrent requests, not one per request. The journal is a folder
of segment files (``seg-<n>-<process tag>.jsonl``); a segment is closed when it passes
``segment_bytes``, and the sink's writer deletes a closed segment once every record in
it is in the database. What a killed process left behind is replayed when the next one
starts writing (inserting twice keeps a record once). A line torn by a crash was never
acknowledged and is skipped.

Several processes may share one folder (replicas writing one SQLite file): each writes
segments of its own and holds an exclusive ``flock`` on the one it has open, and a
process replays only segments nobody holds. (A replica starting took a live replica's
open segment for a dead one's, replayed and deleted it, and what the live one then
acknowledged went into a deleted file.) A segment is made under a hidden name and
renamed once locked, so no process ever sees it unheld while it is live (one starting
between the open and the lock took it for a dead one's). Each segment names its store
(``seg-<n>-<tag>.<store>.jsonl``): sinks of different databases may share a folder, and
each replays only its own (a service's records went into another's database). A live
process also adopts what a dead peer left, every ``orphan_scan_s``, not only at start.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one process per folder
    fcntl = None  # type: ignore[assignment]

from .forks import set_aside
from .record import RoutingRecord

__all__ = ["Journal", "journal_scope"]

log = logging.getLogger("langchain_tiered_router")


# seg-<n>[-<process tag>][.<store>].jsonl: without a tag or a store, written by an older release
_SEGMENT = re.compile(r"^seg-(\d+)(?:-([0-9a-f]+))?(?:\.([0-9a-f]+))?\.jsonl$")
_MAKING = re.compile(r"^\.(seg|owner)-.*\.making$")  # a segment or an owner lock being made: renamed once locked
_OWNER = re.compile(r"^\.owner-([0-9a-f]+)\.lock$")  # held while its process lives


class Journal:
    def __init__(self, directory: str | Path, *, scope: str | None = None, segment_bytes: int = 8 * 1024 * 1024):
        """``scope``: the store's identity (hex); segments of another scope are never replayed here."""
        self.directory = Path(directory)
        self.scope = scope
        self.segment_bytes = segment_bytes
        # how often the writer looks for segments a dead peer left (a replica scaled away
        # is never restarted to replay them)
        self.orphan_scan_s = 30.0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._pending: list[bytes] = []
        self._next = 1  # ticket of the next append
        self._synced = 0  # every ticket up to here is on disk
        self._syncing = False
        self._fh = None
        self._tag = f"{os.getpid():x}{secrets.token_hex(3)}"  # this process's segments
        self._owner = self._hold_owner()
        self._closed: list[Path] = sorted(self._existing(), key=self._number)  # left by an earlier process
        self._say_what_is_not_ours()
        self._number_next = (self._number(self._closed[-1]) + 1) if self._closed else 1
        self._current: Path | None = None
        self.appended = self.fsyncs = 0
        # What lets a closed segment of this process go without a replay (``state``). Each
        # append has a ticket, to be confirmed committed (``confirm``) or marked as written
        # by a replay only (``replay``: a provisional record, one the store did not take, one
        # the queue had no room for). Tickets of the open segment (and of appends not on
        # disk yet) are held one by one; a closed segment keeps only its ticket range, how
        # many of them are unconfirmed and whether one needs a replay: memory stays flat
        # however long the store is down. Every segment of another process is replayed.
        self._loose: set[int] = set()  # unconfirmed, in no closed segment yet
        self._loose_replay: set[int] = set()  # in no closed segment yet, written by a replay only
        self._loose_failed: set[int] = set()  # of those, records the store did not take or had no room for
        self._segments: dict[Path, _Held] = {}  # this process's closed segments
        self._firsts: list[int] = []  # the closed segments' first tickets, ascending, and their paths
        self._ordered: list[Path] = []
        self._segment_first = 0

    @staticmethod
    def _number(path: Path) -> int:
        match = _SEGMENT.match(path.name)
        return int(match.group(1)) if match else 0

    def _existing(self) -> list[Path]:
        """This store's segments no live process is writing: its owner ended, or it was
        closed. (A segment of no store, an older release's, may be anyone's.)"""
        names = list(self.directory.iterdir())
        live = {m.group(1) for m in map(_OWNER.match, (p.name for p in names)) if m}
        live = {tag for tag in live if tag == self._tag or _held(self.directory / f".owner-{tag}.lock")}
        found = []
        for p in names:
            match = _SEGMENT.match(p.name)
            # a live process's segments are its own to replay, its closed ones too (they
            # are unheld from closing until replayed: taking them replayed them twice)
            if match and match.group(3) in (None, self.scope) and match.group(2) not in live and not _held(p):
                found.append(p)
            elif _MAKING.match(p.name) and _stale(p) and not _held(p):
                p.unlink(missing_ok=True)  # its maker died before writing anything to it
            elif (owner := _OWNER.match(p.name)) and owner.group(1) not in live:
                p.unlink(missing_ok=True)  # a process that ended: its segments are anyone's now
        return found

    def _hold_owner(self):  # noqa: ANN202 - a binary file, or None without flock
        """This process's owner lock, held while it lives: its segments are not adopted."""
        return self._locked_new(f".owner-{self._tag}.lock") if fcntl is not None else None

    def _say_what_is_not_ours(self) -> None:
        """Segments of another store are left for it, and an older release's (which name no
        store) are replayed here: with several stores on one folder, either may be wrong,
        so say so rather than leave records unwritten or write them quietly."""
        if self.scope is None:
            return
        foreign = [p.name for p in self.directory.iterdir()
                   if (m := _SEGMENT.match(p.name)) and m.group(3) not in (None, self.scope)]
        older = [p.name for p in self._closed if (m := _SEGMENT.match(p.name)) and m.group(3) is None]
        if foreign:
            log.warning("telemetry journal %s: %d segment(s) of another database (%s...) are left for the sink "
                        "of that database; a database moved or renamed since leaves its own here: start its sink "
                        "with the old path or DSN once to replay them", self.directory, len(foreign), foreign[0])
        if older:
            log.warning("telemetry journal %s: %d segment(s) written by an older release, which name no database, "
                        "are replayed into this one (%s...); if several databases shared this folder, some of "
                        "their records may belong to another", self.directory, len(older), older[0])

    def adopt_orphans(self) -> int:
        """Add the segments a dead peer left since this journal opened; how many."""
        with self._cond:
            known = set(self._closed)
            current = self._current
        found = [p for p in self._existing() if p not in known and p != current]
        if found:
            with self._cond:
                self._closed.extend(p for p in sorted(found, key=self._number) if p not in self._closed)
        return len(found)

    # -- appending: group commit ----------------------------------------------------

    def append(self, line: str, *, provisional: bool = False) -> int:
        """Write one JSON line and return once it is on disk; its ticket, for ``confirm``.
        ``provisional``: a record that only a replay writes."""
        data = line.encode("utf-8") + b"\n"
        with self._cond:
            ticket = self._next
            self._next += 1
            (self._loose_replay if provisional else self._loose).add(ticket)
            self._pending.append(data)
            while self._synced < ticket:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True  # this caller leads: it writes everything pending
                batch, self._pending = self._pending, []
                last = self._next - 1
                self._cond.release()
                try:
                    full = self._write(batch)
                except BaseException:
                    self._cond.acquire()
                    self._pending[:0] = batch  # not acknowledged: the next leader tries again
                    self._syncing = False
                    self._cond.notify_all()
                    raise
                self._cond.acquire()
                self._syncing = False
                self._synced = last
                if full is not None:  # published under the lock with its tickets, never before
                    self._publish(full, self._segment_first, last)
                self._cond.notify_all()
        return ticket

    def _write(self, batch: list[bytes]) -> Path | None:
        """Append ``batch`` (the leader's, outside the lock); the segment it filled and closed."""
        fh = self._fh
        if fh is None:
            self._segment_first = self._synced + 1  # the first ticket it holds (run by the leader: no race)
            name = f"seg-{self._number_next:08d}-{self._tag}" + (f".{self.scope}" if self.scope else "")
            self._number_next += 1
            fh = self._make(name)
            self._current = self.directory / f"{name}.jsonl"
            self._fh = fh
        fh.write(b"".join(batch))
        fh.flush()
        os.fsync(fh.fileno())
        self.appended += len(batch)
        self.fsyncs += 1
        if fh.tell() >= self.segment_bytes:
            return self._close_current()
        return None

    def _make(self, name: str):  # noqa: ANN202 - a binary file
        """The segment ``name``, open for appending and locked before any other process can
        see it."""
        if fcntl is None:
            return open(self.directory / f"{name}.jsonl", "ab")
        return self._locked_new(f"{name}.jsonl")

    def _locked_new(self, name: str):  # noqa: ANN202 - a binary file
        """A new file ``name``, made under a hidden name, locked, then renamed (the lock
        stays with the file): nobody ever sees it unheld."""
        making = self.directory / f".{name.lstrip('.')}.making"
        fh = open(making, "ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows the name: never blocks
            os.rename(making, self.directory / name)
        except BaseException:
            fh.close()
            making.unlink(missing_ok=True)
            raise
        return fh

    def _close_current(self) -> Path | None:
        """Close the open segment; its path, for the caller to ``_publish`` under the lock."""
        if self._fh is None:
            return None
        self._fh.close()
        self._fh = None
        closed, self._current = self._current, None
        assert closed is not None
        return closed

    def _publish(self, segment: Path, first: int, last: int) -> None:
        """A closed segment of this process, holding tickets ``first``..``last``, joins the
        ones to replay or let go (under the lock)."""
        held = self._segments[segment] = _Held(first, last)
        for ticket in range(first, last + 1):
            if ticket in self._loose:
                self._loose.discard(ticket)
                held.unconfirmed += 1
            elif ticket in self._loose_replay:
                self._loose_replay.discard(ticket)
                self._loose_failed.discard(ticket)
                held.replay = True
        at = bisect.bisect(self._firsts, first)
        self._firsts.insert(at, first)
        self._ordered.insert(at, segment)
        self._closed.append(segment)

    def _segment_of(self, ticket: int) -> "_Held | None":
        at = bisect.bisect(self._firsts, ticket) - 1
        if at < 0:
            return None
        held = self._segments[self._ordered[at]]
        return held if ticket <= held.last else None

    def after_fork(self) -> None:
        """In a forked child: segments of its own. The parent's open segment stays the
        parent's (its lock is the parent's: this copy of the file is let go), and so do the
        closed ones the parent will replay."""
        if self._fh is not None:
            # this copy lets the parent's segment go: its descriptor now names /dev/null (a
            # child holding it kept the segment locked, so a killed parent's acknowledged
            # records waited for the child to end); the file object is kept untouched, since
            # a fork during an append may have left bytes in its buffer
            self._let_go(self._fh)
        self._cond = threading.Condition()
        self._pending, self._syncing, self._fh, self._current = [], False, None, None
        self._next, self._synced = 1, 0
        self._loose, self._loose_replay, self._loose_failed = set(), set(), set()
        self._segments, self._firsts, self._ordered = {}, [], []
        self._tag = f"{os.getpid():x}{secrets.token_hex(3)}"
        if self._owner is not None:  # the parent's owner lock: its copy let go here (the parent holds it on)
            self._owner.close()
        self._owner = self._hold_owner()
        self._closed = []

    @staticmethod
    def _let_go(fh) -> None:  # noqa: ANN001 - a binary file
        """Point the inherited descriptor of ``fh`` at /dev/null and keep the object aside.
        A file the parent's writer was closing as it forked is closed here already (its
        descriptor gone, or another file's by now): nothing to let go. That case raised
        inside the fork handler, which then left the parent's held lock in the child: its
        first append waited for ever."""
        try:
            fd = -1 if fh.closed else fh.fileno()
        except ValueError:  # closed between the two looks
            fd = -1
        if fd >= 0:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        set_aside(fh)

    def rotate(self) -> None:
        """Close the current segment (waiting for a running fsync), so it can be replayed."""
        with self._cond:
            while self._syncing:
                self._cond.wait()
            closed = self._close_current()
            if closed is not None:
                self._publish(closed, self._segment_first, self._synced)

    def confirm(self, tickets: Iterable[int]) -> None:
        """These records are committed to the store."""
        with self._cond:
            for ticket in tickets:
                if ticket in self._loose:
                    self._loose.discard(ticket)
                elif (held := self._segment_of(ticket)) is not None:
                    held.unconfirmed -= 1
                # else its segment was replayed already (it held a record to replay): inserted

    def replay(self, tickets: Iterable[int]) -> None:
        """These records are not committed (the store did not take them, the queue had no
        room): only a replay of their segment writes them."""
        with self._cond:
            for ticket in tickets:
                if ticket in self._loose:
                    self._loose.discard(ticket)
                    self._loose_replay.add(ticket)
                    self._loose_failed.add(ticket)
                elif (held := self._segment_of(ticket)) is not None:
                    held.unconfirmed -= 1
                    held.replay = True

    def holds_failed(self) -> bool:
        """Whether the open segment holds a record the store did not take or the queue had
        no room for: once the store answers again, closing it now replays that record
        (else it waited for the segment to fill, or for the close)."""
        with self._cond:
            return any(ticket <= self._synced for ticket in self._loose_failed)

    def state(self, segment: Path) -> str:
        """What a closed segment needs: ``settled`` (this process wrote it and the writer
        committed every record in it: delete it unread), ``waiting`` (some of its records
        are still queued for the writer), or ``replay``."""
        with self._cond:
            held = self._segments.get(segment)
            if held is None or held.replay:
                return "replay"
            return "waiting" if held.unconfirmed > 0 else "settled"

    # -- the writer's side ----------------------------------------------------------

    def closed_segments(self) -> list[Path]:
        return list(self._closed)

    def read(self, segment: Path) -> tuple[list[RoutingRecord], list[str]]:
        """The records of a segment, and its unreadable (torn) lines."""
        records, bad = [], []
        try:
            text = segment.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return [], []
        # lines end at "\n" only: a record's text may hold U+2028 or U+0085 raw (orjson
        # writes them so), where ``str.splitlines`` cut it into two "torn" halves, both lost
        for line in text.split("\n"):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            try:
                records.append(RoutingRecord.from_json_dict(json.loads(line)))
            except (ValueError, TypeError, KeyError):
                bad.append(line)
        return records, bad

    def remove(self, segment: Path) -> None:
        with self._cond:
            if segment in self._closed:
                self._closed.remove(segment)
            if self._segments.pop(segment, None) is not None:
                at = self._ordered.index(segment)
                del self._ordered[at], self._firsts[at]
        segment.unlink(missing_ok=True)


@dataclass
class _Held:
    """A closed segment of this process: its tickets, how many of them the writer has not
    confirmed yet, and whether one of them only a replay writes."""

    first: int
    last: int
    unconfirmed: int = 0
    replay: bool = False


def journal_scope(store_identity: str) -> str:
    """A short, stable name of a store (a resolved path, a DSN) for its segments' names."""
    return hashlib.sha256(store_identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _stale(path: Path, age_s: float = 60.0) -> bool:
    """Older than ``age_s``: a segment being made is locked and renamed within moments."""
    try:
        return time.time() - path.stat().st_mtime > age_s
    except FileNotFoundError:
        return False


def _held(segment: Path) -> bool:
    """Whether another process holds ``segment`` open for writing (its ``flock``)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(segment, os.O_RDONLY)
    except FileNotFoundError:
        return True  # gone meanwhile: nothing to replay
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock it may have taken
    return False
