"""The telemetry tables, one definition for every SQL store (SQLite, PostgreSQL).

The record's searchable fields are columns; the whole record is the ``record`` JSON.
Only the numeric types differ between the databases, so they are filled in per store."""

from __future__ import annotations

__all__ = ["COLUMNS", "ON_CONFLICT", "PROVISIONAL_SHADOW", "schema_sql", "column_declarations", "missing_columns"]

_TEMPLATE = """
CREATE TABLE IF NOT EXISTS routing_records (
    request_id TEXT PRIMARY KEY,
    ts {real} NOT NULL,
    session_id TEXT,
    integration TEXT,
    policy TEXT,
    tier TEXT,
    model_id TEXT,
    escalated INTEGER,
    flagged INTEGER,
    error TEXT,
    input_tokens {bigint},
    output_tokens {bigint},
    cost_usd TEXT,
    baseline_tier TEXT,
    baseline_cost_usd TEXT,
    savings_usd TEXT,
    latency_ms {real},
    shadow_status TEXT,
    shadow_score {real},
    shadow_cost_usd TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_records_ts ON routing_records (ts);
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT PRIMARY KEY,
    served_score {real},
    baseline_score {real},
    source TEXT
);
"""

COLUMNS = ("request_id", "ts", "session_id", "integration", "policy", "tier", "model_id", "escalated",
           "flagged", "error", "input_tokens", "output_tokens", "cost_usd", "baseline_tier",
           "baseline_cost_usd", "savings_usd", "latency_ms", "shadow_status", "shadow_score",
           "shadow_cost_usd", "record")


# A shadow-sampled request's record is written when its shadow call ends; a durable sink
# keeps it meanwhile with this ``shadow_status`` (``Sink.write_provisional``), and a crash
# before the end leaves it so. Its final form replaces it in the store (``ON_CONFLICT``);
# any other row of a request id is kept as it was, once.
PROVISIONAL_SHADOW = "pending"
ON_CONFLICT = ("ON CONFLICT (request_id) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "request_id")
               + f" WHERE routing_records.shadow_status = '{PROVISIONAL_SHADOW}'")


def schema_sql(*, real: str, bigint: str) -> str:
    """The tables and index in a store's dialect (its names for a float and a 64-bit int)."""
    return _TEMPLATE.format(real=real, bigint=bigint)


def column_declarations(*, real: str, bigint: str) -> dict[str, str]:
    """``routing_records``' columns and their declarations (``"shadow_score REAL"``), in a
    store's dialect: what a table made by an older writer, or by hand, is missing."""
    body = schema_sql(real=real, bigint=bigint).split("routing_records (", 1)[1].split(");", 1)[0]
    lines = (line.strip().rstrip(",") for line in body.splitlines())
    return {line.split()[0]: line for line in lines if line}


def missing_columns(have: set[str], *, real: str, bigint: str) -> list[str]:
    """The declarations of the columns a ``routing_records`` table with columns ``have``
    lacks, to add (none when there is no table: the schema makes it whole). A missing
    column every record needs means it is no telemetry table: ``ValueError``, saying so."""
    if not have:
        return []
    out = []
    for name, declaration in column_declarations(real=real, bigint=bigint).items():
        if name in have:
            continue
        if "NOT NULL" in declaration or "PRIMARY KEY" in declaration:
            raise ValueError(f"the table routing_records has no column {name}, which every record needs: it is not "
                             "a tiered-router telemetry table")
        out.append(declaration)
    return out
