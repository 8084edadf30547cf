"""What tuning the embedding model on a collection's own questions is worth, measured on
a dataset split by document (`python -m rag eval tune`, rag/cli/eval_tune.py).

The documents are split first (`tuning_split.split_questions`: by document, as a
tuning job splits a collection). `tune_and_evaluate` then:

1. indexes every document with the base model (`corpus_index`) and asks the held-out
   questions with the fused default and with dense-only search: "base";
2. makes labelled pairs of the training side's questions (`labelled_pairs`: the chunk
   that would count as holding the answer, BM25's best when several do) and, apart,
   inverse-cloze pairs of the training documents' chunks (`tuning_pairs.pseudo_pairs`),
   each with a BM25 hard negative of another training document;
3. trains from the base model on each set (`tuning.train_embedding`), loads the result
   the way a collection's tuned model is loaded (`TunedModels.embedder`: the ONNX int8
   export included, timed apart), indexes the whole corpus again with it and asks the
   held-out questions again: "tuned" and "pseudo" (the latter can be skipped).
   With `dense_weights`, each index is also searched fused at those dense weights (a
   diagnostic: the default's 0.4 was chosen for the base model).

The held-out documents stay out of training altogether: not their questions, not their
chunks as pseudo-queries, not their chunks as negatives. Indexing time is reported
whole and, apart, the wall time the model spent embedding (`EmbedClock`): the second is
what re-embedding a collection costs, since a tuning job copies chunks without reading
the files again.

Left out: the gate's decision (services/tuning.py decides for a collection; here every
figure is reported as it is), and reading the datasets (rag/datasets/).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.components.embeddings import Embedder
from rag.components.local_model import Progress
from rag.components.tuned_models import TunedModelInfo, TunedModels
from rag.core.errors import ConfigError, DatasetError
from rag.core.settings import Settings
from rag.evaluation.measures import EvalQuestion, EvalReport
from rag.evaluation.runs import Article, CorpusIndex, EvalProgress, brief, corpus_index, evaluate
from rag.evaluation.tuning_split import QuestionSplit, bm25_search, labelled_pairs, split_questions
from rag.finetune.tuning import TrainOptions, TrainReport, train_embedding
from rag.finetune.tuning_pairs import TuningPair, hard_negatives, pairs_hash, pseudo_pairs
from rag.services.wiring import EMBEDDERS

NEGATIVE_K = 30  # BM25 hits looked through for a hard negative of another document: as many
# as a search takes candidates anyway (10 left 14 of 30 pairs without one on 6 articles)


@dataclass(frozen=True)
class TuneEvalOptions:
    held_out: float  # the share of documents whose questions only test
    train: TrainOptions
    pseudo_limit: int  # inverse-cloze pairs at most; 0: no pseudo-query model
    seed: int = 0  # of the split and the pseudo-queries
    dense_weights: tuple[float, ...] = ()  # fused searches at these weights too


@dataclass(frozen=True)
class VariantRun:
    """One model's held-out figures and what indexing the corpus with it took."""

    hybrid: EvalReport
    dense: EvalReport
    chunks: int
    index_s: float  # the whole indexing: reading, chunking, embedding, writing
    embed_s: float  # of which the model was embedding
    train: TrainReport | None = None
    load_s: float = 0.0  # loading the trained model (and its ONNX int8 export)
    reweighted: dict[float, EvalReport] = field(default_factory=dict)  # by dense weight

    def main(self, measure: str) -> dict[str, float | None]:
        return {"hybrid": self.hybrid.measures().get(measure),
                "dense": self.dense.measures().get(measure)}  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "hybrid": brief(self.hybrid),
            "dense": brief(self.dense),
            "index_s": round(self.index_s, 1),
            "embed_s": round(self.embed_s, 1),
            "chunks_per_s": round(self.chunks / self.embed_s, 1) if self.embed_s else None,
        }
        if self.train is not None:
            d["train"] = {"pairs": self.train.pairs, "steps": self.train.steps,
                          "seconds": round(self.train.seconds, 1)}  # fmt: skip
            d["load_s"] = round(self.load_s, 1)
        if self.reweighted:
            d["hybrid_at_dense_weight"] = {str(w): brief(r) for w, r in self.reweighted.items()}
        return d


@dataclass(frozen=True)
class TuneRun:
    """The whole evaluation: the split, the pairs, and the three models' figures."""

    split: QuestionSplit
    options: TuneEvalOptions
    labelled: int  # labelled pairs made
    unlabelled: int  # training questions no chunk of their documents answers
    pseudo: int  # inverse-cloze pairs made
    negatives: dict[str, int]  # pairs with a hard negative, per set
    base: VariantRun
    tuned: VariantRun
    pseudo_run: VariantRun | None

    def to_dict(self, measure: str) -> dict[str, object]:
        """The documented JSON: the main measure per model and search, the times, the
        split, and every measure of every run."""
        tuned, pseudo = self.tuned, self.pseudo_run
        return {
            "measure": measure,
            "base": self.base.main(measure),
            "tuned": tuned.main(measure),
            "pseudo": pseudo.main(measure) if pseudo else None,
            "train_s": round(tuned.train.seconds, 1) if tuned.train else None,
            "pseudo_train_s": round(pseudo.train.seconds, 1) if pseudo and pseudo.train else None,
            "embed_s": round(tuned.embed_s, 1),
            "base_embed_s": round(self.base.embed_s, 1),
            "chunks": self.base.chunks,
            "chunks_per_s": {k: v.to_dict()["chunks_per_s"] for k, v in self.runs().items()},
            "split": self.split.to_dict() | {"held_out": self.options.held_out},
            "pairs": {
                "labelled": self.labelled,
                "training_questions_unlabelled": self.unlabelled,
                "pseudo": self.pseudo,
                "pseudo_limit": self.options.pseudo_limit,
                "with_hard_negative": self.negatives,
            },
            "train_options": asdict(self.options.train),
            "runs": {k: v.to_dict() for k, v in self.runs().items()},
            "settings": self.base.hybrid.settings,
        }

    def runs(self) -> dict[str, VariantRun]:
        """The models run, by name: base, tuned and (unless skipped) pseudo."""
        runs = {"base": self.base, "tuned": self.tuned, "pseudo": self.pseudo_run}
        return {k: v for k, v in runs.items() if v is not None}


class EmbedClock:
    """An embedder that keeps the wall time spent embedding. Files are prepared in
    parallel, so calls overlap: a moment when any call runs counts once."""

    def __init__(self, inner: Embedder, name: str = "") -> None:
        self.inner = inner
        self.name = name or inner.name
        self.max_tokens = inner.max_tokens
        self.seconds = 0.0
        self._busy = 0
        self._since = 0.0
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        with self._lock:
            if not self._busy:
                self._since = time.perf_counter()
            self._busy += 1
        try:
            return self.inner.embed(texts, progress)
        finally:
            with self._lock:
                self._busy -= 1
                if not self._busy:
                    self.seconds += time.perf_counter() - self._since


def base_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, built as an engine builds it."""
    if settings.remote_embedding:
        raise ConfigError("Tuning trains a local model: unset the remote embedding server.")
    from rag.components.remote_embeddings import open_embedder

    return EMBEDDERS.get(settings.embedding_model, open_embedder)(settings)


def _ask(
    corpus: CorpusIndex,
    questions: Sequence[EvalQuestion],
    clock: EmbedClock,
    options: TuneEvalOptions,
    progress: EvalProgress | None,
    without: Sequence[str],
) -> VariantRun:
    """The held-out questions asked of one index (its embedding time read first: the
    questions are embedded too)."""
    embed_s, app = clock.seconds, corpus.app
    hybrid = evaluate(app, questions, progress=progress, without=without)
    dense = evaluate(app, questions, hybrid=False)
    reweighted = {w: evaluate(app, questions, dense_weight=w, without=without)
                  for w in options.dense_weights}  # fmt: skip
    return VariantRun(hybrid, dense, app.collection().chunks, corpus.index_seconds, embed_s,
                      reweighted=reweighted)  # fmt: skip


def tune_and_evaluate(
    name: str,
    articles: Sequence[Article],
    questions: Sequence[EvalQuestion],
    settings: Settings,
    options: TuneEvalOptions,
    *,
    allow_rejected: bool = False,
    progress: EvalProgress | None = None,
    without: Sequence[str] = (),
) -> TuneRun:
    """Split, index with the base model, train on labelled and on pseudo pairs, index
    with each trained model, and ask the held-out questions every time."""
    split = split_questions(articles, questions, options.held_out, options.seed)
    if not split.train or not split.test:
        raise DatasetError(f"{name}: the split left no questions on one side.")
    base = EmbedClock(base_embedder(settings))
    base.embed(["warm up"])  # loading (or exporting) the model is not embedding
    base.seconds = 0.0

    def index(embedder: EmbedClock) -> AbstractContextManager[CorpusIndex]:
        return corpus_index(name, articles, split.test, settings, embedder=embedder,
                            allow_rejected=allow_rejected, progress=progress)  # fmt: skip

    with index(base) as corpus:
        app = corpus.app
        base_run = _ask(corpus, split.test, base, options, progress, without)
        train_chunks = [c for c in app.all_chunks() if c.file in split.train_docs]
        bm25 = bm25_search(app, sorted({c.doc_id for c in train_chunks}), NEGATIVE_K)
        labelled = hard_negatives(labelled_pairs(app, split.train, train_chunks), bm25)
        if progress:
            progress("labelled pairs", len(labelled), len(split.train))
        pseudo: list[TuningPair] = []
        if options.pseudo_limit:
            pseudo = pseudo_pairs(train_chunks, options.pseudo_limit, options.seed)
            pseudo = hard_negatives(pseudo, bm25)
            if progress:
                progress("pseudo pairs", len(pseudo), len(pseudo))
    runs: dict[str, VariantRun] = {}
    with tempfile.TemporaryDirectory(prefix="docchat-tune-eval-") as tmp:
        models = TunedModels(Path(tmp) / "tuned")
        for source, pairs in (("pairs", labelled), ("pseudo", pseudo)):
            if not pairs and source == "pseudo":
                continue
            out = Path(tmp) / source
            report, embedder, load_s = _train(models, out, source, pairs, settings, options,
                                              progress)  # fmt: skip
            with index(embedder) as corpus:
                run = _ask(corpus, split.test, embedder, options, progress, without)
            runs[source] = replace(run, train=report, load_s=load_s)
    return TuneRun(
        split=split, options=options, labelled=len(labelled),
        unlabelled=len(split.train) - len(labelled), pseudo=len(pseudo),
        negatives={"labelled": sum(bool(p.negative) for p in labelled),
                   "pseudo": sum(bool(p.negative) for p in pseudo)},
        base=base_run, tuned=runs["pairs"], pseudo_run=runs.get("pseudo"),
    )  # fmt: skip


def _train(
    models: TunedModels,
    out: Path,
    source: str,
    pairs: Sequence[TuningPair],
    settings: Settings,
    options: TuneEvalOptions,
    progress: EvalProgress | None,
) -> tuple[TrainReport, EmbedClock, float]:
    """Train on `pairs` into `out`, keep the model as a collection's is kept, and load
    it (timed: the ONNX int8 export is part of loading). The engine is handed the
    loaded model under a plain name: a `tuned:` name would be looked up in the
    throw-away index's own data dir."""
    label = "labelled" if source == "pairs" else source
    report = train_embedding(
        settings.embedding_model, pairs, out, options.train,
        progress=(lambda s, n: progress(f"training ({label})", s, n)) if progress else None,
    )  # fmt: skip
    info = TunedModelInfo(
        name=models.new_name(), collection="eval", base_model=settings.embedding_model,
        source=source, pairs=report.pairs, pairs_hash=pairs_hash(pairs),
        created=time.time(), train_s=report.seconds, figures={},
    )  # fmt: skip
    saved = models.save(out, info)
    t0 = time.perf_counter()
    tuned = models.embedder(saved.name, settings)
    embedder = EmbedClock(tuned, name=f"{settings.embedding_model} tuned ({label})")
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - t0
    embedder.seconds = 0.0
    return report, embedder, load_s
