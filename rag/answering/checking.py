"""The claim check of a finished answer, as the answer streams run it.

`with_claims` gives the answer back with `claims`: each sentence decided by the local
check (`claims.check_claims`), then, in "llm" mode, the ones it could not decide by
the LLM as a judge (`claim_judge.judge_claims`, one call). Its time is in
`timings["check"]`. Only a complete LLM answer is checked: an extractive answer is
quotes (it passes by construction), and a stopped or failed one is not what the
model meant to say.

A check that fails never costs the answer: it is logged and the answer goes out
unchecked.

Left out: checking while the answer streams (a sentence's citations may come after it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from rag.answering.claim_judge import judge_claims
from rag.answering.claims import check_claims
from rag.components.embeddings import Embedder
from rag.components.generation import LLM
from rag.core.models import Answer, Source

log = logging.getLogger(__name__)


def with_claims(
    answer: Answer,
    sources: Sequence[Source],
    *,
    mode: str,
    embedder: Embedder | None,
    llm: LLM | None,
    model: str | None = None,
) -> Answer:
    """`answer` with its sentences checked (`mode`: "off", "local" or "llm")."""
    if mode == "off" or answer.mode != "llm" or answer.error or not answer.text.strip():
        return answer
    t0 = time.perf_counter()
    try:
        claims = check_claims(answer.text, sources, embedder=embedder, question=answer.question)
        if mode == "llm" and llm is not None and any(not c.sure for c in claims):
            claims = judge_claims(llm, claims, answer.text, sources, model=model)
    except Exception:  # any failure: the answer matters more than its check
        log.exception("the claim check failed: the answer goes out unchecked")
        return answer
    timings = {**answer.timings, "check": time.perf_counter() - t0}
    return replace(answer, claims=claims, timings=timings)
