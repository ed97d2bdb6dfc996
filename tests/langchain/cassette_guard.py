"""Read every stored cassette and find credentials, however the values were encoded.

botocore sends header values as bytes, so vcrpy writes them as ``!!binary`` (base64):
a plain grep for ``Authorization`` or an access key id misses them. This decodes
every string and bytes value (and base64 text) before looking.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

FAKE_SECRETS = ("fake-secret-access-key-for-tests", "fake-session-token-for-tests")
PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"AWS4-HMAC-SHA256\s+Credential=", re.IGNORECASE),
    re.compile(r"Credential=[A-Z0-9]{16,}/", re.IGNORECASE),
    re.compile(r"x-amz-security-token", re.IGNORECASE),
    re.compile(r"^(proxy-)?authorization$|^x-api-key$", re.IGNORECASE),
    re.compile(r"\bABSK[A-Za-z0-9+/=]{20,}|bedrock-api-key-[A-Za-z0-9+/=]{20,}"),  # Bedrock API keys, long- and short-term
    *[re.compile(re.escape(secret)) for secret in FAKE_SECRETS],
    ACCOUNT_IN_ARN := re.compile(r"arn(?:%3A|:)aws[a-z-]*(?:%3A|:)[a-z0-9-]+(?:%3A|:)[a-z0-9-]*(?:%3A|:)"
                                 r"(?!000000000000)\d{12}", re.IGNORECASE),  # an ARN's account id, URL-encoded or not
]
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]{16,}$")
_B64_RUN = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")  # base64 inside other text (a stream chunk's "bytes")


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, bytes):
        yield from _decoded(value.decode("utf-8", errors="replace"))
        yield value.decode("latin-1")
    elif isinstance(value, str):
        yield from _decoded(value)


def _decoded(text: str, depth: int = 0) -> Iterator[str]:
    """``text``, and what its base64 decodes to: the whole of it, and each base64 run
    inside it (a JSON stream chunk's ``bytes``, a body inside a body), a few levels deep."""
    yield text
    if depth >= 3:
        return
    runs = [text] if _B64.match(text) else []
    runs += _B64_RUN.findall(text)
    for run in runs:
        try:
            inner = base64.b64decode(run + "=" * (-len(run.strip()) % 4), validate=False).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            continue
        yield from _decoded(inner, depth + 1)


def leaks_in(path: Path) -> list[str]:
    """Every credential-looking value in one cassette file (raw text and decoded values)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    found = [f"{path.name}: raw text matches {p.pattern}" for p in PATTERNS[:3] + PATTERNS[5:] if p.search(raw)]
    data = yaml.safe_load(raw) if path.suffix in (".yaml", ".yml") else __import__("json").loads(raw)
    for text in _texts(data):
        for pattern in PATTERNS:
            if pattern.search(text):
                found.append(f"{path.name}: {pattern.pattern} in {text[:60]!r}")
    return found


def cassette_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
