"""Reading a router config file safely: bounded in size, UTF-8, YAML without tricks.

One pass over the YAML event stream, before anything is built, refuses what
``yaml.safe_load`` accepts but should not: a key given twice (the last one would win
silently), nesting deeper than ``MAX_DEPTH`` (libyaml's composer recurses), aliases
that expand past ``MAX_NODES`` (an alias bomb), integers too long to be numbers.
Each refusal is a ``ConfigError`` naming the key path and the line. Plain data given
in code (``RouterConfig.from_dict``) gets the same depth and size checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["read_config_file", "parse_config_text", "check_config_data", "MAX_CONFIG_BYTES", "MAX_DEPTH",
           "MAX_NODES"]

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a router config is a few KB; big JSON schemas fit many times over
MAX_DEPTH = 32
MAX_NODES = 100_000  # every value counted as often as aliases repeat it
MAX_INT_DIGITS = 30

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_config_file(path: str | Path) -> Any:
    """The plain data of the YAML file at ``path``, every check applied."""
    path = Path(path)
    source = str(path)
    try:
        if not path.is_file():
            raise ConfigError("cannot read config: no such file" if not path.exists() else
                              "cannot read config: not a file", source=source)
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file of {size:,} bytes; a router config is at most {MAX_CONFIG_BYTES:,}",
                              source=source)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", source=source) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file over {MAX_CONFIG_BYTES:,} bytes", source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(raw, exc, source) from None
    return parse_config_text(text, source=source)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, source: str) -> ConfigError:
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    where = raw[: exc.start].decode("utf-8", errors="replace")
    key = ""
    try:  # the key whose value holds the bad byte, when the rest of the file is readable YAML
        key = _scan(raw.decode("utf-8", errors="replace"), locate=len(where)) or ""
    except ConfigError:
        pass
    return ConfigError(f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column}; "
                       "save the file as UTF-8", path=key, source=source)


def parse_config_text(text: str, *, source: str | None = None) -> Any:
    """YAML text to plain data, after the event-stream checks."""
    if len(text.encode("utf-8", errors="replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config over {MAX_CONFIG_BYTES:,} bytes", source=source)
    _scan(text, source=source)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader / SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise ConfigError(f"cannot read a value: {exc}", source=source) from None


class _Frame:
    __slots__ = ("mapping", "keys", "key", "expect_key", "index", "size", "anchor", "line")

    def __init__(self, mapping: bool, anchor: str | None, line: int):
        self.mapping, self.anchor, self.line = mapping, anchor, line
        self.keys: set[str] = set()
        self.key: str | None = None
        self.expect_key = True
        self.index = 0
        self.size = 1


def _path(frames: list[_Frame]) -> str:
    out = ""
    for frame in frames:
        if frame.mapping:
            if frame.key is not None and not frame.expect_key:
                out += f".{frame.key}" if out else frame.key
        else:
            out += f"[{frame.index}]"
    return out[:200]


def _is_int(value: str) -> bool:
    digits = value.replace("_", "").lstrip("+-")
    return digits.isdigit() or (digits[:2].lower() in ("0x", "0o", "0b") and len(digits) > 2)


def _scan(text: str, *, source: str | None = None, locate: int | None = None) -> str | None:
    """Walk the events once: duplicate keys, depth, alias expansion, long integers.

    With ``locate`` (a character offset), return the key path of the value there instead.
    """
    frames: list[_Frame] = []
    anchors: dict[str, int] = {}
    total = 0

    def fail(message: str, mark: Any) -> ConfigError:
        line = f" (line {mark.line + 1})" if mark is not None else ""
        return ConfigError(message + line, path=_path(frames), source=source)

    def node(size: int, event: Any) -> None:
        """A complete value (scalar, alias or closed collection) of ``size`` nodes just ended."""
        if not frames:
            return
        top = frames[-1]
        top.size += size
        if top.mapping:
            if top.expect_key:
                key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                if key in top.keys and key != "<<":
                    raise ConfigError(f"key {key[:80]!r} is given twice; the second would silently win "
                                      f"(line {event.start_mark.line + 1})",
                                      path=(_path(frames) + (f".{key}" if _path(frames) else key))[:200],
                                      source=source)
                top.keys.add(key)
                top.key, top.expect_key = key, False
            else:
                top.expect_key = True
        else:
            top.index += 1

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if locate is not None and isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                if event.start_mark.index <= locate <= event.end_mark.index and isinstance(event, yaml.ScalarEvent):
                    if frames and frames[-1].mapping and frames[-1].expect_key:
                        base = _path(frames)
                        return (f"{base}.{event.value}" if base else event.value)[:200]
                    return _path(frames)
            if isinstance(event, yaml.CollectionStartEvent):
                if len(frames) >= MAX_DEPTH:
                    raise fail(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
                frames.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor,
                                     event.start_mark.line))
            elif isinstance(event, yaml.CollectionEndEvent):
                frame = frames.pop()
                if frame.anchor:
                    anchors[frame.anchor] = frame.size
                node(frame.size, event)
            elif isinstance(event, yaml.ScalarEvent):
                if (event.implicit[0] and event.tag is None and len(event.value) > MAX_INT_DIGITS
                        and _is_int(event.value)):
                    raise fail(f"an integer of {len(event.value)} digits is not a usable number", event.start_mark)
                if event.anchor:
                    anchors[event.anchor] = 1
                node(1, event)
                total += 1
            elif isinstance(event, yaml.AliasEvent):
                size = anchors.get(event.anchor, 1)
                total += size
                node(size, event)
            if total > MAX_NODES or (frames and frames[0].size > MAX_NODES):
                raise fail(f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)",
                           getattr(event, "start_mark", None))
    except yaml.YAMLError as exc:
        if locate is not None:
            return None
        raise ConfigError(f"not valid YAML: {exc}", path=_path(frames), source=source) from None
    return None


def check_config_data(data: Any, *, source: str | None = None) -> None:
    """Plain data given in code: no deeper than ``MAX_DEPTH``, at most ``MAX_NODES`` values
    counting shared references each time they appear, and no reference cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size_of(value: Any, path: str, depth: int) -> int:
        if not isinstance(value, (dict, list, tuple)):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ConfigError("the value refers to itself", path=path, source=source)
        if depth > MAX_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", path=path[:200], source=source)
        on_path.add(key)
        total = 1
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if isinstance(value, dict) and not isinstance(k, str):  # pydantic says "[1]: Keys should be strings"
                raise ConfigError(f"the key {k!r} is not a name (YAML reads on, off, yes and no as booleans and "
                                  "bare numbers as numbers): quote the key as written, 'on'",
                                  path=path or "(top level)", source=source)
            here = f"{path}[{k}]" if isinstance(k, int) else (f"{path}.{k}" if path else str(k))
            total += size_of(v, here, depth + 1)
            if total > MAX_NODES:
                raise ConfigError(f"more than {MAX_NODES:,} values (shared values counted each time)",
                                  path=path[:200], source=source)
        on_path.discard(key)
        sizes[key] = total
        return total

    size_of(data, "", 0)
