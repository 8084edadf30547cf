"""Tuning a collection's embedding model on its own questions: the job's flow, and the
switch between a collection's models.

A tuning job (`services/tuning_view.py` starts it, `jobs/tune_run.py` runs it) goes:

1. pairs from its source: the studio's reviewed pairs or a question file (resolved to
   chunks when the job is started), or pseudo-queries made from the chunks;
2. split by document (`tune_held_out` of them only test), hard negatives from the
   collection's BM25 index for the training side;
3. training from the collection's base model (`finetune/tuning.py`; Cancel is read at
   every step), the model saved under the data dir with its stamp;
4. the collection's chunks copied with the tuned model's vectors into a temporary
   collection (same chunk ids, no re-extraction) while the old one answers;
5. the held-out questions searched with the fused default search on both
   (`finetune/tune_gate.py`); the copy is swapped in only when the tuned model is
   better, else dropped and the job ends "refused". The figures are kept with the
   model either way.

`use` switches a collection to another of its models (a tuned one, or back to the
base: "" or its name) by the same copy and swap, without a gate: the user chose.

Left out: who may see a job, and starting one (the user's view, `tuning_view.py`).
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.components.embeddings import Embedder
from rag.components.lexical import Lexical
from rag.components.store import Store
from rag.components.tuned_models import TunedModelInfo, is_tuned
from rag.core.errors import RagError, TuningCancelled, TuningError
from rag.core.models import Chunk, CollectionInfo, Hit
from rag.core.settings import Settings
from rag.finetune.tune_gate import MRR_DEPTH, HeldOutScores, held_out_scores, passes
from rag.finetune.tuning import TrainOptions, TrainReport, train_embedding
from rag.finetune.tuning_pairs import (
    TuningPair,
    TuningSplit,
    hard_negatives,
    pairs_hash,
    pseudo_pairs,
    split_by_document,
)
from rag.ingest.stages import embedding_text
from rag.jobs.tune_records import DONE, REFUSED, TuneJob, TuneRequest
from rag.jobs.tune_run import Report, TuneOutcome
from rag.retrieval.options import SearchOptions
from rag.retrieval.query import clean_query
from rag.retrieval.search import search
from rag.services.gate import Gate
from rag.services.resources import LazyEmbedder, WriteLocks
from rag.team.access import User

GATE_K = 5  # hit@5: a held-out question is found when its chunk is in the top 5
NEGATIVE_DEPTH = 10  # BM25 results searched for a chunk of another document
_STOPPED = "Tuning was cancelled; the collection keeps its model."

Progress = Callable[[int, int], None]  # (chunks embedded, chunks)


def _stop_if(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise TuningCancelled(_STOPPED)


def _never() -> bool:
    return False


def _shifted(progress: Progress, before: int, total: int, done: int, _of: int) -> None:
    """A document's embedding progress as the whole copy's."""
    progress(before + done, total)


def _line(base: HeldOutScores, tuned: HeldOutScores, docs: int) -> str:
    return (f"hit@{base.k} {base.hit_at_k:.2f} -> {tuned.hit_at_k:.2f}, mrr@10 "
            f"{base.mrr_at_10:.2f} -> {tuned.mrr_at_10:.2f} on {base.questions} held-out "
            f"question(s) of {docs} document(s)")  # fmt: skip


@dataclass(frozen=True)
class TuningService:
    settings: Settings
    store: Store
    gate: Gate
    embedder: LazyEmbedder
    locks: WriteLocks
    lexical: Lexical

    # -- the job ----------------------------------------------------------------------------

    def run_job(self, user: User, job: TuneJob, request: TuneRequest, report: Report,
                should_stop: Callable[[], bool]) -> TuneOutcome:  # fmt: skip
        """The job's flow (the module docstring), as `user` may do it now."""
        name = self.gate.open(user, job.collection, "reindex")
        info = self.store.collection_info(name)
        report("pairs", 0.0, f"reading the {info.chunks} chunks of {name}")
        chunks = {c.id: c for c in self.store.all_chunks(name)}
        pairs = self._pairs(job.source, request, chunks)
        split = split_by_document(pairs, self.settings.tune_held_out)
        report("pairs", 0.5, f"{len(split.train)} training pairs: finding hard negatives")
        train = self._negatives(info, split.train, chunks, should_stop)
        base_model = self.base_model(info)
        name_t = self.embedder.tuned.new_name()
        out = Path(self.settings.data_dir) / "tuned" / f".training-{job.id}"
        try:
            trained = self._train(base_model, train, out, request, report, should_stop)
            _stop_if(should_stop)
            report("saving", 0.0, "saving the tuned model", name_t)
            stamp = TunedModelInfo(
                name=name_t, collection=name, base_model=base_model, source=job.source,
                pairs=trained.pairs, pairs_hash=pairs_hash(train), created=time.time(),
                train_s=round(trained.seconds, 1), figures=_sizes(split),
            )  # fmt: skip
            self.embedder.tuned.save(out, stamp)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        _stop_if(should_stop)
        report("loading", 0.0, "loading the tuned model", name_t)
        tuned = self.embedder.for_model(name_t)
        return self._gate(name, tuned, stamp, split, report, should_stop)

    def base_model(self, info: CollectionInfo) -> str:
        """The model a collection's tuning starts from: its own, or the base of the tuned
        model it uses (a second tuning starts afresh, not from the first one's weights)."""
        if is_tuned(info.model):
            return self.embedder.tuned.get(info.model).base_model
        return info.model

    def _pairs(self, source: str, request: TuneRequest, chunks: dict[str, Chunk]
               ) -> list[TuningPair]:  # fmt: skip
        if source == "pseudo":
            pairs = pseudo_pairs(list(chunks.values()), self.settings.tune_max_pairs)
        else:  # the chunks named when the job was started, as they are now
            pairs = [TuningPair(q, embedding_text(c), c.doc_id, c.id)
                     for q, cid in request.pairs if (c := chunks.get(cid)) is not None]  # fmt: skip
        if not pairs and source == "pseudo":
            raise TuningError("No training pairs: no chunk has two sentences to make one.")
        if not pairs:
            raise TuningError("No training pairs: their chunks are no longer in the collection.")
        return pairs

    def _negatives(self, info: CollectionInfo, train: Sequence[TuningPair],
                   chunks: dict[str, Chunk], should_stop: Callable[[], bool],
                   ) -> list[TuningPair]:  # fmt: skip
        def bm25(question: str) -> list[Chunk]:
            _stop_if(should_stop)
            found = self.lexical.search(info, clean_query(question), NEGATIVE_DEPTH,
                                        question=question)  # fmt: skip
            return [chunks[i] for i, _ in found.top if i in chunks]

        return hard_negatives(train, bm25)

    def _train(self, base_model: str, train: Sequence[TuningPair], out: Path,
               request: TuneRequest, report: Report, should_stop: Callable[[], bool],
               ) -> TrainReport:  # fmt: skip
        options = TrainOptions.from_settings(self.settings, max_steps=request.max_steps)
        report("training", 0.0, f"training on {len(train)} pairs from {base_model}")

        def step(done: int, steps: int) -> None:
            report("training", done / steps if steps else 0.0, f"step {done}/{steps}")

        return train_embedding(base_model, train, out, options, step, should_stop)

    def _gate(self, name: str, tuned: Embedder, stamp: TunedModelInfo, split: TuningSplit,
              report: Report, should_stop: Callable[[], bool]) -> TuneOutcome:  # fmt: skip
        """The copy, the held-out scores on both, and the swap when the tuned model is
        better; writes to the collection wait meanwhile (as in a re-index)."""
        with self.locks(name):
            info = self.store.collection_info(name)
            tmp = f"{name} (tuning)"

            def copied(done: int, total: int) -> None:
                report("re-embedding", done / total if total else 1.0,
                       f"re-embedding {done}/{total} chunks")  # fmt: skip

            copy = self._copy(info, tmp, tuned, copied, should_stop)
            try:
                report("scoring", 0.0, f"searching {len(split.test)} held-out questions")
                base = held_out_scores(split.test, self._searcher(info), GATE_K)
                report("scoring", 0.5, f"searching {len(split.test)} held-out questions")
                after = held_out_scores(split.test, self._searcher(copy, tuned), GATE_K)
                figures = {**stamp.figures, "base": base.to_dict(), "tuned": after.to_dict()}
                dense = None
                if stamp.source == "pseudo":  # decided on the dense side: tune_gate.passes
                    dense = (held_out_scores(split.test, self._searcher(info, dense=True), GATE_K),
                             held_out_scores(split.test, self._searcher(copy, tuned, dense=True),
                                             GATE_K))  # fmt: skip
                    figures |= {"base_dense": dense[0].to_dict(), "tuned_dense": dense[1].to_dict()}
                self.embedder.tuned.record(stamp.name, figures=figures)
                _stop_if(should_stop)  # the last moment a Cancel leaves everything as it was
            except BaseException:
                self._drop(tmp)
                raise
            line = _line(*(dense or (base, after)), len(split.test_docs))
            if dense is not None:
                line = f"dense search: {line}"
            if not passes(stamp.source, (base, after), dense):
                self._drop(tmp)
                self.embedder.tuned.record(stamp.name, decision="refused")
                return TuneOutcome(REFUSED, stamp.name, f"{line}: not better, "
                                   f"{name} keeps {info.model}")  # fmt: skip
            report("swapping", 0.0, "swapping the tuned collection in", stamp.name)
            # (No drop of the copy should the swap fail: once the old collection is
            # deleted, the copy is all there is.)
            self._swap(name, tmp)
            self.embedder.tuned.record(stamp.name, decision="swapped")
            return TuneOutcome(DONE, stamp.name, f"{line}: swapped in")

    # -- the switch -------------------------------------------------------------------------

    def use(self, user: User, model: str, collection: str | None,
            progress: Progress | None) -> CollectionInfo:  # fmt: skip
        """Switch the collection to `model` ("" or the engine's model: the base; a tuned
        model of this collection) by re-embedding its chunks into a copy and swapping it
        in; the old model answers until then. No gate: the user chose."""
        name = self.gate.open(user, collection, "reindex")
        base = self.embedder.get()
        if model and model != base.name:
            if not is_tuned(model) or self.embedder.tuned.get(model).collection != name:
                raise TuningError(f"{model!r} is not a model of {name!r}: use one of its "
                                  "tuned models or the base model.")  # fmt: skip
            target = self.embedder.for_model(model)
        else:
            target = base
        with self.locks(name):
            info = self.store.collection_info(name)
            if info.model == target.name:
                return info
            tmp = f"{name} (re-embedding)"
            self._copy(info, tmp, target, progress or (lambda d, t: None), _never)
            self._swap(name, tmp)
        return self.store.collection_info(name)

    # -- the parts ---------------------------------------------------------------------------

    def _copy(self, info: CollectionInfo, tmp: str, embedder: Embedder, progress: Progress,
              should_stop: Callable[[], bool]) -> CollectionInfo:  # fmt: skip
        """`info`'s ready documents and chunks (same ids, same text) into a new collection
        `tmp`, embedded by `embedder`; no document is read again. `tmp` has no sharing
        record (the right to change `info` covers it), and is dropped when the copy
        stops or fails."""
        if self.store.has_collection(tmp):  # an interrupted earlier one
            self._drop(tmp)
        self.gate.sharing.drop(tmp)
        self.store.create_collection(tmp, model=embedder.name, dimension=embedder.dimension,
                                     chunk_tokens=info.chunk_tokens,
                                     chunk_overlap=info.chunk_overlap)  # fmt: skip
        try:
            docs = self.store.documents(info.name)
            total, done = sum(d.chunks for d in docs), 0
            progress(0, total)
            for d in docs:
                _stop_if(should_stop)
                chunks = self.store.chunks_of(info.name, d.doc_id)
                report = functools.partial(_shifted, progress, done, total)
                vectors = embedder.embed([embedding_text(c) for c in chunks], report)
                self.store.begin_document(tmp, d)
                self.store.add_chunks(tmp, chunks, vectors)
                self.store.finish_document(tmp, d)
                done += len(chunks)
                progress(done, total)
        except BaseException:
            self._drop(tmp)
            raise
        return self.store.collection_info(tmp)

    def _swap(self, name: str, tmp: str) -> None:
        """The copy takes the collection's place (its name, sharing and conversations)."""
        key = self.store.collection_key(name)
        self.store.delete_collection(name)
        self.lexical.drop(key)
        self.store.rename_collection(tmp, name)

    def _drop(self, tmp: str) -> None:
        try:
            key = self.store.collection_key(tmp)
            self.store.delete_collection(tmp)
            self.lexical.drop(key)
        except RagError:
            pass  # gone already; an earlier one is dropped by the next copy

    def _searcher(self, info: CollectionInfo, embedder: Embedder | None = None,
                  dense: bool = False) -> Callable[[str], list[Hit]]:  # fmt: skip
        """The fused default search on `info` (its own model unless `embedder`; the dense
        side alone when `dense`), deep enough for mrr@10."""
        e = embedder or self.embedder.for_collection(info)
        options = SearchOptions.from_settings(self.settings, top_k=max(GATE_K, MRR_DEPTH),
                                              hybrid=not dense)  # fmt: skip

        def run(question: str) -> list[Hit]:
            return search(clean_query(question), store=self.store, embedder=e, collection=info,
                          options=options, lexical=self.lexical, question=question)  # fmt: skip

        return run


def _sizes(split: TuningSplit) -> dict[str, object]:
    """The split's sizes, and which documents tested and which trained (never both)."""
    return {"k": GATE_K, "train_questions": len(split.train),
            "test_questions": len(split.test), "train_docs": len(split.train_docs),
            "test_docs": len(split.test_docs),
            "held_out_docs": sorted(split.test_docs),
            "trained_docs": sorted(split.train_docs)}  # fmt: skip
