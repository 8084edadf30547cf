"""Labelled claims from COVID-QA and SEC 10-Q, for `python -m rag eval claims`.

Each dataset is indexed in a throw-away data dir (`runs.corpus_index`, the real model),
and a seeded sample of its questions is retrieved as an answer would be
(`DocChat.retrieve`: the sources that fit the prompt). From each question, a supported
sentence and the source it cites (a `Case`):
- COVID-QA: the sentence of the gold chunk (the chunk holding the answer's span) that
  holds the answer, cited to that chunk;
- SEC 10-Q: each sentence (up to `PER_ANSWER`) of the analysts' reference answer that
  quotes a figure (a number with thousands separators or decimals), cited to the
  retrieved chunks holding its amounts verbatim, when they also have every name it
  writes but the company's.
When the search did not retrieve the chunk to cite, it replaces the last source (the
claim checks the checker, not the search).

From each case (claim_edits.py makes the edits): supported, the sentence verbatim, its
paraphrase, the sentence without its citation (some source backs it), COVID-QA's
question and short answer stated and the clause holding the answer; computed, SEC
10-Q's table row as a percentage change; not found, a figure's digit, scale or sign
changed, a name swapped (a company for a company, else a name of the corpus of the
same form), the citation pointed at another source that does not hold the sentence's
answer or figures, a sentence of another document cited to the chunk, and the same
without a citation. A case's claims are also checked together as one answer, for the
time the check adds to an answer.

Left out: answers written by a model (the claims are made by rule, to be rerun anywhere).
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.answering.claim_text import answer_sentences, plain
from rag.answering.figures import figures_in
from rag.core.doc_terms import named_words
from rag.core.errors import DatasetError
from rag.core.models import Hit, Source
from rag.core.settings import Settings
from rag.core.text import figures, sentence_spans
from rag.datasets import claim_edits as edits
from rag.datasets.covid_qa import NAME as COVID
from rag.datasets.covid_qa import read_covid_qa
from rag.datasets.sec_10q import NAME as SEC
from rag.datasets.sec_10q import read_sec_10q
from rag.engine import DocChat
from rag.evaluation.claims import (
    ClaimProgress,
    ClaimScores,
    LabelledClaim,
    score_claims,
    time_answers,
)
from rag.evaluation.measures import EvalQuestion
from rag.evaluation.runs import corpus_index

SAMPLE = 400  # questions per dataset (all of SEC 10-Q's 127 with figures)
SEED = 0
PER_ANSWER = 4  # SEC sentences with figures taken from one reference answer
MAX_WORDS = 60  # a longer COVID-QA sentence is not what an answer says
ANSWER_SENTENCES = 6  # a case's claims joined into one answer, for its time


@dataclass(frozen=True)
class Case:
    """A supported sentence (no citations) and what it is checked against."""

    sentence: str
    cites: tuple[int, ...]
    sources: tuple[Source, ...]
    question: str
    doc_id: str
    holds: tuple[str, ...]  # what a source must lack to be a wrong citation
    answer: str = ""  # COVID-QA: the answer's text, in the sentence
    replaced: bool = False  # a chunk it cites took the place of a retrieved one


def cite(sentence: str, numbers: Sequence[int]) -> str:
    """The sentence with its citations before its final period: "... [2]."."""
    if not numbers:
        return sentence
    mark = "".join(f"[{n}]" for n in numbers)
    body = sentence[:-1] if sentence.endswith(".") else sentence
    return f"{body} {mark}."


def _with(sources: tuple[Source, ...], hit: Hit, keep: set[int]) -> tuple[tuple[Source, ...], int]:
    """`hit` among the sources: its number if it is there, else in place of the last
    source not in `keep` (or added when there are none)."""
    for s in sources:
        if s.chunk.id == hit.chunk.id:
            return sources, s.n
    free = [s.n for s in sources if s.n not in keep]
    n = free[-1] if free else len(sources) + 1
    rest = tuple(s for s in sources if s.n != n)
    return tuple(sorted((*rest, Source(n=n, hit=hit)), key=lambda s: s.n)), n


def covid_cases(app: DocChat, questions: Sequence[EvalQuestion]) -> list[Case]:
    """COVID-QA's cases: the sentence of the gold chunk (the first chunk covering the
    answer) that holds the answer, of 6 to `MAX_WORDS` words, cited to that chunk."""
    cases = []
    for q in questions:
        sources = app.retrieve(q.question).sources
        gold = next((c for c in app.chunks(q.doc_id) if _covers(c.start, c.end, q)), None)
        if gold is None or q.start is None:
            continue
        retrieved = {s.chunk.id for s in sources}
        sources, n = _with(sources, Hit(gold, 0.0), set())
        rel = q.start - gold.start
        span = next(((a, b) for a, b in sentence_spans(gold.text)
                     if a <= rel and rel + len(q.answer) <= b), None)  # fmt: skip
        if span is None:
            continue
        sentence = plain(gold.text[span[0] : span[1]])
        if not sentence[:1].isupper() or not 6 <= len(sentence.split()) <= MAX_WORDS:
            continue
        holds = (q.answer, sentence)
        cases.append(Case(sentence, (n,), sources, q.question, q.doc_id, holds, q.answer,
                          gold.id not in retrieved))  # fmt: skip
    return cases


def _covers(start: int, end: int, q: EvalQuestion) -> bool:
    return q.start is not None and q.end is not None and start <= q.start and q.end <= end


# What the reference answers add that an answer from the sources would not: notes
# naming the file ("(SOURCE: 2023 Q1 AAPL.pdf)", '("2023 Q1 INTC.pdf")', 'In the "2023 Q2
# MSFT.pdf" document, ...').
_SOURCE_NOTE = re.compile(
    r"\(?\bSOURCE(?:\(S\))?:[^)\n]*\)?|\s*\(\s*\"?\d{4} Q\d [A-Z]+\.pdf\"?\s*\)"
    r"|\s*\"?\b\d{4} Q\d [A-Z]+\.pdf\b\"?",
    re.IGNORECASE,
)


def reference_answers(path: Path) -> dict[str, str]:
    """SEC 10-Q's reference answers by question (qna_data.csv's `Answer`)."""
    try:
        table = (Path(path) / "qna_data.csv").read_text(encoding="utf-8-sig")
        return {r["Question"]: r["Answer"] for r in csv.DictReader(io.StringIO(table))}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as e:
        raise DatasetError(
            f"Cannot read SEC 10-Q answers from {path}: {type(e).__name__}"
        ) from None


def _holds(text: str, figure: str) -> bool:
    return re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d]|[.,]\d)", text) is not None


def sec_cases(
    app: DocChat, questions: Sequence[EvalQuestion], answers: dict[str, str]
) -> list[Case]:
    """SEC 10-Q's cases: the reference answers' sentences with figures, cited to the
    chunks holding them (see the module docstring)."""
    cases = []
    for q in questions:
        answer = _SOURCE_NOTE.sub("", answers.get(q.question, ""))
        sentences = [s.body for s in answer_sentences(answer) if figures(s.body)]
        if not sentences:
            continue
        retrieved = app.retrieve(q.question).sources
        deeper = app.search(q.question, top_k=30, min_score=-1.0)[1]
        for sentence in sentences[:PER_ANSWER]:
            # Every amount and percentage the sentence writes, as digits: each must stand
            # in a cited source for the sentence to be supported there.
            amounts = [re.sub(r"[^\d.,]", "", f.text).strip(".,") for f in figures_in(sentence)
                       if f.kind in ("number", "currency", "percent")]  # fmt: skip
            held = tuple(dict.fromkeys(a for a in amounts if a))
            found = _cite(held, retrieved, deeper) if held else None
            if found is None:
                continue
            sources, cites = found
            if not _names_held(sentence, [s for s in sources if s.n in cites]):
                continue
            doc = next(s.chunk.doc_id for s in sources if s.n == cites[0])
            cases.append(Case(sentence, cites, sources, q.question, doc, held,
                              replaced=sources != retrieved))  # fmt: skip
    return cases


def _cite(
    held: Sequence[str], retrieved: tuple[Source, ...], deeper: Sequence[Hit]
) -> tuple[tuple[Source, ...], tuple[int, ...]] | None:
    """The sources (the retrieved ones, a deeper hit in place of the last when needed)
    and the numbers of those holding the figures, or None when the search has none."""
    sources = retrieved
    cites: list[int] = []
    for fig in held:
        holder = next((s.n for s in sources if _holds(s.chunk.text, fig)), None)
        if holder is None:
            hit = next((h for h in deeper if _holds(h.chunk.text, fig)), None)
            if hit is None:
                return None
            sources, holder = _with(sources, hit, set(cites))
        cites.append(holder)
    return sources, tuple(dict.fromkeys(cites))


def _names_held(sentence: str, cited: Sequence[Source]) -> bool:
    """Whether the cited sources have every name the sentence writes (but the company's,
    which a filing's chunk rarely says): a sentence that names what they do not is not
    supported there ("... the Inflation Reduction Act" beside a share count)."""
    text = " ".join(f"{s.chunk.text} {s.chunk.context}" for s in cited).lower()
    names = [w.removesuffix("'s") for w in named_words(sentence)]
    return all(w in SEC_COMPANIES or w.lower() in text for w in names)


# The companies of the SEC 10-Q filings: a company's name is swapped for another's.
SEC_COMPANIES = ("Apple", "Amazon", "Intel", "Microsoft", "NVIDIA")


def variants(case: Case, others: Sequence[Case], names: Sequence[Sequence[str]],
             rng: random.Random) -> list[LabelledClaim]:  # fmt: skip
    """Every labelled claim made from one case (see the module docstring). `names`: groups
    of names of one kind each (companies, then the corpus's names), swapped within."""
    s, n = case.sentence, case.cites
    cited = [x for x in case.sources if x.n in n]
    avoid = " ".join(f"{x.chunk.text} {x.chunk.context} {x.chunk.file}" for x in cited)
    out: list[tuple[str, str, str]] = [(cite(s, n), "supported", "verbatim")]
    out.append((s, "supported", "uncited_supported"))
    for kind, made in (
        ("paraphrase", edits.paraphrase(s)),
        ("clause", edits.clause_of(s, case.answer) if case.answer else None),
        ("answer", edits.stated(case.question, case.answer) if case.answer else None),
    ):
        if made:
            out.append((cite(made, n), "supported", kind))
    change = next((c for x in cited if (c := edits.row_change(x.chunk.text, case.holds[0]))), None)
    if change and not case.answer:
        out.append((cite(change, n), "computed", "computed"))
    for kind, made in (
        ("figure_digit", edits.change_digit(s, avoid, rng)),
        ("figure_scale", edits.change_scale(s, avoid, rng)),
        ("figure_sign", edits.flip_sign(s, avoid)),
        ("name", _swap(s, names, avoid, rng)),
    ):
        if made:
            out.append((cite(made, n), "not_found", kind))
    wrong = [x.n for x in case.sources if x.n not in n and not any(
        h.lower() in plain(x.chunk.text).lower() for h in case.holds)]  # fmt: skip
    if wrong:
        out.append((cite(s, [wrong[0]]), "not_found", "citation"))
    other = [o for o in others if o.doc_id != case.doc_id]
    if other:
        o = rng.choice(other)
        out.append((cite(o.sentence, n), "not_found", "other_document"))
        out.append((o.sentence, "not_found", "uncited_other"))
    return [LabelledClaim(c, case.sources, label, kind, case.question) for c, label, kind in out]


def _swap(s: str, names: Sequence[Sequence[str]], avoid: str, rng: random.Random) -> str | None:
    used = [w.removesuffix("'s") for w in named_words(s)]
    used += re.findall(r"\b([A-Z][\w-]+)['\u2019]s\b", s)  # a possessive, first word or not
    for group in names:
        found = [w for w in dict.fromkeys(used) if w in group]
        made = edits.swap_name(s, found, group, avoid, rng) if found else None
        if made:
            return made
    return None


@dataclass(frozen=True)
class ClaimRun:
    """One dataset's labelled claims and how the check scored them."""

    dataset: str
    questions: int  # sampled
    cases: int  # supported sentences found among them
    replaced: int  # cases whose cited chunk the search had not retrieved
    claims: list[LabelledClaim]
    scores: ClaimScores

    def to_dict(self) -> dict[str, object]:
        counts = {"questions": self.questions, "cases": self.cases, "replaced": self.replaced}
        return {**counts, **self.scores.to_dict()}


def build_claims(
    dataset: str,
    path: Path,
    settings: Settings,
    *,
    sample: int = SAMPLE,
    seed: int = SEED,
    progress: ClaimProgress | None = None,
) -> ClaimRun:
    """Index one dataset ("covid-qa" or "sec-10-q") with `settings`, make its labelled
    claims from a sample of `sample` questions (`seed`), and score them with the model
    it was indexed with."""
    rng = random.Random(seed)
    if dataset == "covid-qa":
        articles, questions = read_covid_qa(path)
        name = COVID
    elif dataset == "sec-10-q":
        articles, questions = read_sec_10q(path)
        questions = [q for q in questions if q.figures]
        answers = reference_answers(path)
        name = SEC
    else:
        raise DatasetError(f"Unknown dataset {dataset!r}: covid-qa or sec-10-q.")
    chosen = questions if len(questions) <= sample else rng.sample(questions, sample)
    with corpus_index(name, articles, chosen, settings, allow_rejected=dataset == "sec-10-q",
                      progress=progress) as corpus:  # fmt: skip
        app = corpus.app
        if dataset == "covid-qa":
            cases = covid_cases(app, chosen)
        else:
            cases = sec_cases(app, chosen, answers)
        names = [SEC_COMPANIES, edits.proper_names([c.text for c in app.all_chunks()])]
        made = [variants(case, cases, names, rng) for case in cases]
        claims = [c for group in made for c in group]
        scores = score_claims(claims, app.embedder, progress=progress)
        # A case's claims together, as one answer of several sentences on its sources:
        # what the check adds to an answer's time.
        time_answers(scores, [group[:ANSWER_SENTENCES] for group in made], app.embedder)
    replaced = sum(c.replaced for c in cases)
    return ClaimRun(dataset, len(chosen), len(cases), replaced, claims, scores)
