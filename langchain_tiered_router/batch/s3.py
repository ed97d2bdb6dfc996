"""The S3 side of a batch run: write job inputs, read job outputs, through a real ``s3`` client.

Layout under the run's prefix (``s3://bucket/prefix/<run id>/``)::

    input/<job name>.jsonl                 one line per record: recordId + modelInput
    output/<job id>/<job name>.jsonl.out   written by Bedrock, one line per processed record
    output/<job id>/manifest.json.out      written by Bedrock: the job's counts
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator

from ..core.text_lines import json_text, utf8_lines
from .errors import BatchSettingsError

__all__ = ["parse_s3_uri", "S3Store"]

_URI = re.compile(r"^s3://([a-z0-9][-.a-z0-9]{1,61}[a-z0-9])(?:/(.*))?$")


def parse_s3_uri(uri: str, *, path: str = "batch.bucket") -> tuple[str, str]:
    """(bucket, key or prefix) of ``s3://bucket/key``; a ``BatchSettingsError`` otherwise."""
    found = _URI.match(uri or "")
    if not found:
        raise BatchSettingsError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)", path=path)
    return found.group(1), (found.group(2) or "")


class S3Store:
    """JSON lines in and out of S3."""

    def __init__(self, client: Any):
        self.client = client

    def put_lines(self, uri: str, rows: Iterable[dict[str, Any]]) -> int:
        bucket, key = parse_s3_uri(uri, path="s3")
        lines = [json_text(row) for row in rows]
        self.client.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode("utf-8"),
                               ContentType="application/jsonl")
        return len(lines)

    def keys(self, prefix_uri: str, suffix: str = "") -> list[str]:
        bucket, prefix = parse_s3_uri(prefix_uri, path="s3")
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        return sorted(found)

    def read_lines(self, uri: str) -> Iterator[dict[str, Any]]:
        """The JSON objects of one JSONL object; a line that is not one is skipped as unreadable."""
        bucket, key = parse_s3_uri(uri, path="s3")
        # lines end at "\n" only: an answer may hold U+2028 or U+0085 raw, and
        # ``str.splitlines`` cut its record in two (both halves unreadable: the record lost)
        for line in utf8_lines(self.client.get_object(Bucket=bucket, Key=key)["Body"].read()):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    yield row
