"""Scoring the claim check (answering/claims.py) on labelled claims.

A `LabelledClaim` is one sentence with its citations, the sources it may cite, the
verdict it deserves ("supported", "computed" or "not_found") and a kind: how it was
made ("verbatim", "paraphrase", "figure_digit", "name", "citation", ...). The COVID-QA
and SEC 10-Q builders are rag/datasets/claims.py; `read_claims_file` reads anyone's
(JSONL, one object a line: {"claim", "sources": [chunk texts], "label", "kind"}; the
claim cites its sources as [1], [2] in list order).

`score_claims` checks each claim alone (one sentence, its sources, one embedding call:
an answer of one sentence, the worst case per sentence) and reports, per kind, how many
of those labelled not found the check marked (not found or uncited: `caught`), how many
of those labelled supported or computed it marked (`false_alarms`), how many it left
unsure (what the LLM judge would re-decide), and the time per sentence. `time_answers`
adds the time of groups of claims checked together, as answers of several sentences.

Left out: the LLM judge (a benchmark of a model, not of DocChat), answers of many
sentences (each sentence is decided alone, so the figures are the same).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.answering.claims import check_claims
from rag.components.embeddings import Embedder
from rag.core.errors import DatasetError
from rag.core.models import Chunk, Claim, Hit, Source

LABELS = ("supported", "computed", "not_found")
MARKED = ("not_found", "uncited")  # verdicts the reader sees marked
ClaimProgress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class LabelledClaim:
    """A sentence (with its citations), its sources, the verdict it deserves, its kind."""

    claim: str
    sources: tuple[Source, ...]
    label: str  # one of LABELS
    kind: str
    question: str = ""  # lends its naming words, as an answer's question does


@dataclass(frozen=True)
class ClaimResult:
    kind: str
    label: str
    verdict: str  # the worst verdict over the claim's sentences; "" when none was a claim
    sure: bool
    ms: float  # per sentence
    by: str = ""


@dataclass
class ClaimScores:
    """What `score_claims` measured."""

    results: list[ClaimResult] = field(default_factory=list)
    answers: list[tuple[int, float]] = field(default_factory=list)  # (sentences, ms) each

    def kinds(self) -> dict[str, dict[str, object]]:
        """Per kind: claims, label, the share marked (caught, or false alarms), unsure."""
        groups: dict[str, list[ClaimResult]] = defaultdict(list)
        for r in self.results:
            groups[r.kind].append(r)
        out: dict[str, dict[str, object]] = {}
        for kind, rs in sorted(groups.items()):
            out[kind] = {
                "claims": len(rs),
                "label": rs[0].label,
                "marked": _share(rs, _marked),
                "unsure": _share(rs, lambda r: not r.sure),
                "by": dict(Counter(r.by for r in rs if _marked(r) == (r.label == "not_found"))),
            }
            if rs[0].label == "computed":
                out[kind]["computed"] = _share(rs, lambda r: r.verdict == "computed")
        return out

    def to_dict(self) -> dict[str, object]:
        """The shares caught per kind of corruption (and every figure change as one,
        "figure"), the false alarms on supported claims, computed claims, the time."""
        kinds = self.kinds()
        bad = [r for r in self.results if r.label == "not_found"]
        figure = [r for r in bad if r.kind.startswith("figure_")]
        caught = {k: v["marked"] for k, v in kinds.items() if v["label"] == "not_found"}
        if figure:
            caught["figure"] = _share(figure, _marked)
        computed = [r for r in self.results if r.label == "computed"]
        ms = [r.ms for r in self.results]
        return {
            "claims": len(self.results),
            "caught": dict(sorted(caught.items())),
            "false_alarms": _share([r for r in self.results if r.label == "supported"], _marked),
            "computed": {
                "claims": len(computed),
                "computed": _share(computed, lambda r: r.verdict == "computed"),
                "marked": _share(computed, _marked),
            },
            "unsure": _share(self.results, lambda r: not r.sure),
            "ms_per_sentence_p50": round(float(np.percentile(ms, 50)), 2) if ms else None,
            "ms_per_sentence_p95": round(float(np.percentile(ms, 95)), 2) if ms else None,
            **self._answer_times(),
            "kinds": kinds,
        }

    def _answer_times(self) -> dict[str, object]:
        if not self.answers:
            return {}
        sentences, ms = zip(*self.answers, strict=True)
        return {
            "answers": len(self.answers),
            "sentences_per_answer": round(float(np.mean(sentences)), 2),
            "ms_per_answer_p50": round(float(np.percentile(ms, 50)), 2),
            "ms_per_answer_p95": round(float(np.percentile(ms, 95)), 2),
        }


def _marked(r: ClaimResult) -> bool:
    return r.verdict in MARKED


def _share(rs: Sequence[ClaimResult], test: Callable[[ClaimResult], bool]) -> float | None:
    return round(sum(map(test, rs)) / len(rs), 4) if rs else None


def _worst(claims: Sequence[Claim]) -> Claim | None:
    """The claim a reader would see marked first: a marked one, else the first."""
    return next((c for c in claims if c.verdict in MARKED), claims[0] if claims else None)


def score_claims(
    claims: Sequence[LabelledClaim],
    embedder: Embedder | None,
    *,
    progress: ClaimProgress | None = None,
) -> ClaimScores:
    """Check every labelled claim alone against its sources; see the module docstring."""
    if not claims:
        raise DatasetError("No labelled claims to score.")
    if embedder is not None:
        embedder.embed(["warm up"])  # loading the model is not checking
    scores = ClaimScores()
    for i, c in enumerate(claims):
        t0 = time.perf_counter()
        checked = check_claims(c.claim, c.sources, embedder=embedder, question=c.question)
        ms = (time.perf_counter() - t0) * 1000 / max(len(checked), 1)
        w = _worst(checked)
        verdict, sure, by = (w.verdict, w.sure, w.by) if w else ("", True, "")
        scores.results.append(ClaimResult(c.kind, c.label, verdict, sure, ms, by))
        if progress and (i % 50 == 0 or i + 1 == len(claims)):
            progress("checking", i + 1, len(claims))
    return scores


def time_answers(
    scores: ClaimScores, answers: Sequence[Sequence[LabelledClaim]], embedder: Embedder | None
) -> None:
    """Time the check of each group of claims (with the same sources) as one answer of
    that many sentences; the times go in `scores.answers`."""
    for group in answers:
        if not group:
            continue
        text = " ".join(c.claim for c in group)
        t0 = time.perf_counter()
        checked = check_claims(
            text, group[0].sources, embedder=embedder, question=group[0].question
        )
        scores.answers.append((len(checked), (time.perf_counter() - t0) * 1000))


def text_sources(texts: Sequence[str]) -> tuple[Source, ...]:
    """Chunk texts as an answer's sources, numbered from 1 (one document each)."""
    out = []
    for n, text in enumerate(texts, start=1):
        doc = hashlib.sha256(text.encode("utf-8")).hexdigest()
        chunk = Chunk(doc_id=doc, file=f"source {n}", index=0, text=text, start=0, end=len(text))
        out.append(Source(n=n, hit=Hit(chunk=chunk, score=1.0)))
    return tuple(out)


def read_claims_file(name: str, data: bytes) -> list[LabelledClaim]:
    """Labelled claims from JSONL: one {"claim", "sources", "label", "kind"} a line."""
    out = []
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{name}: not UTF-8 text.") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            claim, sources, label = row["claim"], row["sources"], row["label"]
            kind = str(row.get("kind") or label)
            question = str(row.get("question") or "")
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DatasetError(
                f'{name} line {i}: expected {{"claim", "sources", "label", "kind"}}.'
            ) from None
        ok = isinstance(claim, str) and isinstance(sources, list)
        if not ok or not all(isinstance(s, str) for s in sources) or label not in LABELS:
            raise DatasetError(
                f"{name} line {i}: a claim (text), sources (a list of texts) and a label "
                f"({', '.join(LABELS)})."
            )
        out.append(LabelledClaim(claim, text_sources(sources), label, kind, question))
    if not out:
        raise DatasetError(f"{name}: no labelled claims.")
    return out
