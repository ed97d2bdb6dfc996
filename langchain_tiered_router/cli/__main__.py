"""``python -m langchain_tiered_router.cli``: the same as ``tiered-router``."""

from . import main

main()
