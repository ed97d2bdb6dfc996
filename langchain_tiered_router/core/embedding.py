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
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = ["StaticEmbedding", "load_embedding", "EMBEDDING_NAME"]

EMBEDDING_NAME = "wordllama/l2_supercat_256"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
_WEIGHTS = "weights/l2_supercat_256.safetensors"


@dataclass(frozen=True)
class StaticEmbedding:
    """Token ids and mean-pooled vectors from one tokenisation."""

    name: str
    tokenizer: object  # tokenizers.Tokenizer
    table: np.ndarray  # (vocab, dims) float32
    fingerprint: str

    @property
    def dims(self) -> int:
        return int(self.table.shape[1])

    @property
    def vocab(self) -> int:
        return int(self.table.shape[0])

    def token_ids(self, text: str) -> np.ndarray:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids  # type: ignore[attr-defined]
        return np.asarray(ids, dtype=np.int64)

    def pool(self, ids: np.ndarray) -> np.ndarray:
        """The L2-normalised mean of the tokens' vectors (zeros for no tokens)."""
        if ids.size == 0:
            return np.zeros(self.dims, dtype=np.float32)
        mean = self.table[ids].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm else mean

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
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    table = load_file(str(weights_path))["embedding.weight"].astype(np.float32)
    fingerprint = hashlib.sha256(table[:64].tobytes()).hexdigest()[:16]
    return StaticEmbedding(EMBEDDING_NAME, tokenizer, table, fingerprint)
