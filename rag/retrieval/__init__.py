"""The retrieval stage: a question -> ranked hits from the dense and BM25 searches.

`query` cleans the question; `options` says how one search runs; `search` gathers
candidates from both sides; `fusion` scores them together; `adjustments` holds the
named per-question steps fusion applies (each can be switched off); `periods` reads
reporting periods from questions and file names; `rerank` re-orders the fused top
candidates by a re-ranker (optional), keeping the fused order when it fails. Building
the prompt from the hits is the answering stage's (rag/answering/context.py).

Left out: re-exports (import from the module that defines a name).
"""
