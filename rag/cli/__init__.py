"""`python -m rag`: the engine from the command line (and for the benchmarks).

- `commands`: the engine commands (ingest, ask, search, docs, delete, collections)
  and `main`, which hands `eval` and `finetune-data` to their own modules.
- `eval`: `python -m rag eval`, retrieval quality and speed.
- `finetune`: `python -m rag finetune-data`, a fine-tuning set from a collection.
- `tune`: `python -m rag tune`, a collection's embedding model tuned on its questions.
- `mcp`: `python -m rag mcp`, the MCP server on stdio (its tools: rag/api/mcp_server.py).

Left out: an interactive shell (each run is one command) and colour (output is
read by people and by other tools alike).
"""

from rag.cli.commands import main

__all__ = ["main"]
