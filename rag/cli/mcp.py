"""`python -m rag mcp`: DocChat's MCP server on stdio, for a desktop client or an IDE
agent that starts it as a command (docs/mcp.md; the tools are in rag/api/mcp_server.py).

It acts as the command line's other commands do: as single-user mode's user, the
operator of this data dir (`DocChat.open`). stdout carries the protocol alone; logs
go to stderr.

Left out: the HTTP transport (it is mounted on the API: `python -m rag serve` serves
it at /mcp, with API keys), background workers (add_url indexes its pages in the
call, not as a job).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rag.cli.prog import PROG
from rag.core.settings import Settings
from rag.engine import DocChat


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"{PROG} mcp",
        description="DocChat's MCP server on stdio (tools: list_collections, search, ask, "
        "get_page, add_url); the same tools are at /mcp of the HTTP API (python -m rag serve)",
    )
    p.parse_args(argv)
    # Imported here: the SDK adds ~0.4 s (measured) that no other command should pay.
    from rag.api.mcp_server import build_server

    engine = DocChat.open(Settings.from_env())
    try:
        build_server(engine, lambda ctx: engine.user).run("stdio")
    finally:
        engine.close()
    return 0
