"""A static text embedding that loads offline and costs microseconds per request.

The vectors are WordLlama's ``l2_supercat`` token embeddings (MIT licence), which the
``wordllama`` wheel ships inside the package (``weights/l2_supercat_256.safetensors``,
16 MB, with its tokenizer). A text's embedding is the mean of its tokens' vectors,
L2-normalised, which is what WordLlama itself computes. We read the two files directly
with ``tokenizers`` and ``safetensors``: ``WordLlama.load()`` looks for the tokenizer
in a folder the wheel does not have and then tries Hugging Face, which must never
happen on a request path (or anywhere offline).

Why this one: a transformer encoder (MiniLM and kin) costs milliseconds per prompt on a
CPU and needs torch or onnxruntime; a static table lookup costs one tokenisation plus a
mean, well under a millisecond for a 1,000-character prompt, and the file ships on PyPI.

The tokenizer is Llama's SentencePiece BPE with no pre-tokenizer: ``encode`` merges over
the whole text as one word, in more than linear time (about 1 ms for 3,000 characters,
8 ms for 10,000). ``WordPieces`` gives the same ids word by word, from a bounded cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import distinct_counts, unit
from .errors import ConfigError

__all__ = ["StaticEmbedding", "WordPieces", "load_embedding", "EMBEDDING_NAME"]

EMBEDDING_NAME = "wordllama/l2_supercat_256"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_MARKER = "\u2581"  # SentencePiece's space: the normaliser prepends it and puts it for every " "


class WordPieces:
    """``tokenizer.encode(text).ids``, word by word: linear in the text, cached per word.

    Exact when the tokenizer is a bare BPE model behind the normaliser "prepend the marker,
    replace spaces by it" and no token of its vocabulary holds the marker after another
    character: then no merge crosses the place where a run of markers follows a character,
    and the text can be cut there first (``usable`` checks both). Texts holding one of the
    special tokens (``<s>``...), which the tokenizer matches before normalising, take
    ``encode``. The cache holds at most ``max_words`` words of at most ``max_chars``
    characters (longer ones are tokenised each time); when full it starts again.
    """

    _PIECES = re.compile(f"{_MARKER}+[^{_MARKER}]*|[^{_MARKER}]+")
    _KEYS = re.compile(r" ( *[^ ]*)")  # over " " + text: each piece without its first space
    _NORMALIZER = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": _MARKER},
                                                       {"type": "Replace", "pattern": {"String": " "},
                                                        "content": _MARKER}]}

    def __init__(self, tokenizer: object, max_words: int = 50_000, max_chars: int = 48):
        self.tokenizer = tokenizer
        self.max_words = max_words
        self.max_chars = max_chars
        self._model = tokenizer.model  # type: ignore[attr-defined]
        self._special = tuple(t.content for t in tokenizer.get_added_tokens_decoder().values())  # type: ignore[attr-defined]
        self._words: dict[str, bytes] = {}  # a piece without its first space -> its ids

    @classmethod
    def usable(cls, config: dict) -> bool:
        """Whether cutting at marker runs gives ``encode``'s ids for this tokenizer file."""
        model = config.get("model") or {}
        if model.get("type") != "BPE" or model.get("dropout") or config.get("pre_tokenizer") is not None:
            return False
        if config.get("normalizer") != cls._NORMALIZER or not isinstance(model.get("vocab"), dict):
            return False
        return not any(_MARKER in token.lstrip(_MARKER) for token in model["vocab"])

    def ids(self, text: str) -> list[int]:
        return self.id_array(text).tolist()

    def id_array(self, text: str) -> np.ndarray:
        """The ids as int32. Each cached word holds its ids as packed bytes, so a text's
        ids are one ``bytes.join`` and one ``frombuffer``, not a Python int per token."""
        if not text:
            return np.empty(0, np.int32)
        if "<" in text and any(s in text for s in self._special):
            return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids,  # type: ignore[attr-defined]
                              dtype=np.int32)
        # Each piece is a run of spaces and what follows it up to the next space, looked up
        # by its key: the piece without its first space. Prose is cut by ``text.split(" ")``
        # (five times faster than a pattern), its few runs of two spaces or more joined
        # back; text with many runs (code, aligned tables) by the pattern, whose cost does
        # not grow with them. Both give the same keys, so they share one cache.
        if _MARKER in text:  # the text's own markers join the runs the spaces become
            keys = [p[1:].replace(_MARKER, " ") for p in self._PIECES.findall(_MARKER + text.replace(" ", _MARKER))]
        elif text.count("  ") > _FEW_RUNS:
            keys = self._KEYS.findall(" " + text)
        else:
            keys = text.split(" ")
            if "" in keys:
                keys = _with_space_runs(keys)
        found = list(map(self._words.get, keys))
        try:
            packed = b"".join(found)  # type: ignore[arg-type]
        except TypeError:  # words not cached yet, or too long to cache
            words = self._words
            for at in _positions(found, None):
                key = keys[at]
                found[at] = words.get(key) or self._tokenize(key)  # a new word twice in the text: tokenised once
            packed = b"".join(found)  # type: ignore[arg-type]
        return np.frombuffer(packed, dtype=np.int32)

    def _tokenize(self, key: str) -> bytes:
        """The ids of the piece ``" " + key`` (spaces become markers), cached under ``key``."""
        tokens = self._model.tokenize(_MARKER + key.replace(" ", _MARKER))
        ids = struct.pack(f"={len(tokens)}i", *[token.id for token in tokens])  # int32, native order: no numpy call
        if len(key) < self.max_chars:
            if len(self._words) >= self.max_words:
                self._words.clear()
            self._words[key] = ids
        return ids


# Above this many double spaces a text is cut by the pattern: joining ``str.split``'s
# words back costs a Python step per run.
_FEW_RUNS = 16


def _positions(items: list[Any], value: Any) -> list[int]:
    """Where ``value`` is in ``items``, found by ``list.index`` (a scan in C, not a Python
    step per item: the values looked for are few)."""
    found, at = [], -1
    while True:
        try:
            at = items.index(value, at + 1)
        except ValueError:
            return found
        found.append(at)


def _with_space_runs(words: list[str]) -> list[str]:
    """``str.split(" ")``'s words (changed in place) with each empty one, a space before
    another space, joined to the word after it as a leading space: the keys ``_KEYS``
    finds."""
    last = len(words) - 1
    for at in reversed([at for at in _positions(words, "") if at < last]):  # right to left: a run
        words[at + 1] = " " + words[at + 1]  # of spaces gathers on the word after it
        del words[at]
    return words


@dataclass(frozen=True)
class StaticEmbedding:
    """Token ids and mean-pooled vectors from one tokenisation."""

    name: str
    tokenizer: object  # tokenizers.Tokenizer
    table: np.ndarray  # (vocab, dims) float32
    fingerprint: str
    pieces: WordPieces | None = field(default=None, compare=False, repr=False)  # the fast, exact path

    @property
    def dims(self) -> int:
        return int(self.table.shape[1])

    @property
    def vocab(self) -> int:
        return int(self.table.shape[0])

    def token_ids(self, text: str) -> np.ndarray:
        try:
            return self._token_ids(text)
        except UnicodeEncodeError:  # a lone surrogate (text cut inside a UTF-16 pair): read as U+FFFD
            return self._token_ids("".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text))

    def _token_ids(self, text: str) -> np.ndarray:
        if self.pieces is not None:
            return self.pieces.id_array(text)
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids  # type: ignore[attr-defined]
        return np.asarray(ids, dtype=np.int64)

    def pool(self, ids: np.ndarray) -> np.ndarray:
        """The L2-normalised mean of the tokens' vectors (zeros for no tokens).

        Each distinct token's row is read once and weighted by its count: a long text
        repeats its tokens, and reading rows from the 32 MB table is what costs."""
        if ids.size == 0:
            return np.zeros(self.dims, dtype=np.float32)
        distinct, counts = distinct_counts(ids)
        return unit(counts.astype(np.float32).dot(self.table.take(distinct, axis=0)) / np.float32(ids.size))

    def embed(self, text: str) -> np.ndarray:
        return self.pool(self.token_ids(text))


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the text embedding needs the 'wordllama' package: "
                          "pip install 'langchain-tiered-router'  (it is a core dependency)")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def load_embedding() -> StaticEmbedding:
    """Load once per process, from files inside the installed wheel; never the network."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = _package_dir()
    tokenizer_path, weights_path = folder / _TOKENIZER, folder / _WEIGHTS
    for path in (tokenizer_path, weights_path):
        if not path.is_file():
            raise ConfigError(f"the embedding file {path} is missing from the wordllama package")
    text = tokenizer_path.read_text(encoding="utf-8")
    tokenizer = Tokenizer.from_str(text)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    pieces = WordPieces(tokenizer) if WordPieces.usable(json.loads(text)) else None
    table = load_file(str(weights_path))["embedding.weight"].astype(np.float32)
    fingerprint = hashlib.sha256(table[:64].tobytes()).hexdigest()[:16]
    return StaticEmbedding(EMBEDDING_NAME, tokenizer, table, fingerprint, pieces)
