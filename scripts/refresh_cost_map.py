"""Refresh the bundled Bedrock price snapshot from the installed LiteLLM's cost map.

    python scripts/refresh_cost_map.py      # writes langchain_tiered_router/data/bedrock_prices.json

The router prices tiers from LiteLLM's cost map, the maintained source. When LiteLLM
is installed its own map is read; the snapshot (Bedrock entries, price fields only) is
what an install without LiteLLM (``pip install 'langchain-tiered-router[langchain]'``)
prices from. Nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
from importlib.metadata import version
from pathlib import Path

from langchain_tiered_router.core.pricing import litellm_cost_map_path

FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
          "cache_creation_input_token_cost", "cache_creation_input_token_cost_above_1hr", "litellm_provider", "mode")
# the long-context rates (``input_cost_per_token_above_200k_tokens``...) and batch rates
RATE_PATTERN = re.compile(r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
                          r"cache_creation_input_token_cost)(_above_1hr)?(_above_\d+k?_tokens)?(_batches)?$")
OUT = Path(__file__).resolve().parents[1] / "langchain_tiered_router" / "data" / "bedrock_prices.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the snapshot (default: {OUT})")
    out = parser.parse_args().out
    source = litellm_cost_map_path()
    if source is None:
        raise SystemExit("LiteLLM is not installed: nothing to refresh from")
    entries = json.loads(source.read_text(encoding="utf-8"))
    bedrock = {name: {k: v for k, v in entry.items() if v is not None and (k in FIELDS or RATE_PATTERN.match(k))}
               for name, entry in sorted(entries.items())
               if isinstance(entry, dict) and str(entry.get("litellm_provider", "")).startswith("bedrock")
               and entry.get("input_cost_per_token") is not None}
    snapshot = {"_source": f"litellm {version('litellm')} {source.name}, Bedrock entries, price fields only",
                **bedrock}
    out.write_text(json.dumps(snapshot, indent=0, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{len(bedrock)} Bedrock prices -> {out}")


if __name__ == "__main__":
    main()
