"""DocChat's results in OpenAI's shapes (chat completions, their stream chunks, model
lists, embeddings, errors), converted once, here.

The sources of an answer travel in an extra `sources` field (on the response, and on
the last chunk of a stream), which OpenAI clients keep and otherwise ignore.

Left out: tool calls, logprobs, `n` > 1 (one answer per question).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import numpy as np

from rag.core.models import Answer, Claim, CollectionInfo, Source

MODEL_PREFIX = "docchat/"  # a collection as a model: docchat/<collection>


def model_name(collection: str) -> str:
    return MODEL_PREFIX + collection


def source(s: Source) -> dict[str, Any]:
    c = s.chunk
    return {
        "n": s.n,
        "file": c.file,
        "page": c.page,
        "section": c.section,
        "start": c.start,
        "end": c.end,
        "score": round(s.hit.score, 4),
        "text": c.text,
        "url": c.url,  # a web page's link to the chunk's section; "" for a file
    }


def models(collections: list[CollectionInfo], owned_by: str = "docchat") -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": model_name(c.name),
                "object": "model",
                "created": int(c.created),
                "owned_by": owned_by,
            }
            for c in collections
        ],
    }


def _usage(answer: Answer) -> dict[str, int]:
    # The LLM's count when it reported one; else words (extractive answers have no tokens).
    completion = answer.completion_tokens or len(answer.text.split())
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion(answer: Answer, model: str, cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
        "sources": [source(s) for s in answer.sources],
        "claims": [claim(c) for c in answer.claims],
        "docchat": _docchat(answer),
    }


def claim(c: Claim) -> dict[str, Any]:
    """A sentence of the answer and its verdict: where it is in the answer, what it
    cites, its evidence (the source's number, as in `sources`, and the span of that
    source's text), the operation of a computed figure, why one is not backed."""
    evidence = None
    if c.source:
        evidence = {"source": c.source, "span": list(c.span) if c.span else None}
    return {
        "sentence": c.sentence,
        "start": c.start,
        "end": c.end,
        "verdict": c.verdict,
        "citations": list(c.citations),
        "evidence": evidence,
        "operation": c.operation,
        "reason": c.reason,
    }


def _docchat(answer: Answer) -> dict[str, Any]:
    """How the answer was made: its mode, the query searched, the sources it cites; for
    a whole-document summary (kind "summary") also the LLM calls it took; `notes` when
    the retrieval has some for the user (a re-ranking skipped)."""
    out: dict[str, Any] = {"mode": answer.mode, "query": answer.query, "cited": list(answer.cited)}
    if answer.kind == "summary":
        out |= {"kind": answer.kind, "llm_calls": answer.llm_calls}
    if answer.notes:  # e.g. "Re-ranking was skipped: ...; the fused order is used."
        out["notes"] = list(answer.notes)
    return out


def summary(answer: Answer) -> dict[str, Any]:
    """The response of POST .../documents/{doc}/summary when it is not streamed."""
    return {
        "summary": answer.text,
        "sources": [source(s) for s in answer.sources],
        "mode": answer.mode,
        "llm_calls": answer.llm_calls,
        "usage": _usage(answer),
    }


def chunk(model: str, cid: str, delta: dict[str, str], finish: str | None = None,
          answer: Answer | None = None) -> dict[str, Any]:  # fmt: skip
    """One `chat.completion.chunk`; the last one (with `answer`) carries the sources."""
    out: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if answer is not None:
        out["sources"] = [source(s) for s in answer.sources]
        out["claims"] = [claim(c) for c in answer.claims]
        out["usage"] = _usage(answer)
        out["docchat"] = _docchat(answer)
    return out


def embeddings(vectors: np.ndarray, model: str, tokens: int, encoding: str) -> dict[str, Any]:
    """OpenAI's embeddings list; `encoding` "base64" is float32 little-endian, as the
    official client asks for by default."""
    data = []
    for i, v in enumerate(vectors):
        if encoding == "base64":
            value: Any = base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        else:
            value = [float(x) for x in v]
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
