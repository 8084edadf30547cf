"""The Library's "Tune search on this collection" section, for those who may re-index it.

What it shows: the embedding model the collection is searched with (the base model, or
a tuned one with its held-out figures), a tuning job to start from one of three
sources of questions (pseudo-queries made from the documents, a question file, the
fine-tuning studio's reviewed pairs), the running job (stage, progress, Cancel) and how
the last one ended, the collection's tuned models with their figures and the gate's
decision, and one click back to the base model or over to another tuned model.

Render only: the work (pairs, training, the held-out gate, re-embedding, the swap) is
`DocChat.tuning`'s. Left out: deleting tuned models (the service keeps them all), and
the tuning jobs of other collections (each collection's section shows its own).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import streamlit as st

from pages._render import when
from rag import DocChat, QAPair, RagError, TunedModelInfo, TuneJob, escape_markdown

REFRESH_S = 1.0  # how often a followed job is read again (a training step takes seconds)

PSEUDO, PAIRS, STUDIO = "pseudo", "pairs", "studio"
SOURCES = {
    PSEUDO: "Pseudo-queries from the documents (no questions needed)",
    PAIRS: "A question file (CSV/JSONL with question + chunk_id or answer [+ source])",
    STUDIO: "The fine-tuning studio's reviewed pairs",
}
SOURCE_NAMES = {PSEUDO: "pseudo-queries", PAIRS: "a question file", STUDIO: "studio pairs"}
STAGES = {
    "pairs": "Making the training pairs",
    "training": "Training",
    "saving": "Saving the tuned model",
    "loading": "Loading the tuned model",
    "re-embedding": "Re-embedding the collection",
    "scoring": "Scoring both models on the held-out questions",
    "swapping": "Swapping the tuned model in",
}
# The studio's session keys (pages/finetune.py): its reviewed pairs and their collection.
STUDIO_PAIRS, STUDIO_COLLECTION = "ft_pairs", "ft_source"

state = st.session_state  # a proxy: each session reads and writes its own state


def _job_key(collection: str) -> str:
    return f"tune-job-{collection}"


def section(app: DocChat, collection: str, chunks: int) -> None:
    """The whole section for `collection` (`chunks` of them, for the cost line)."""
    st.subheader("Tune search on this collection")
    try:
        current = app.tuning.current(collection)
        models = app.tuning.models(collection)
        jobs = app.tuning.jobs(collection)
    except RagError as e:
        st.error(escape_markdown(str(e)))
        return
    by_name = {m.name: m for m in models}
    model_line(current, by_name.get(current))
    job = _followed(app, collection, jobs)
    running = job is not None and not job.finished
    if job is not None and running:
        follow(app, job.id)
    else:
        if job is not None:
            outcome(job, by_name.get(job.model))
        start_form(app, collection, chunks)
    if models:
        models_table(current, models)
        switch(app, collection, current, models, busy=running)


def _followed(app: DocChat, collection: str, jobs: list[TuneJob]) -> TuneJob | None:
    """The job started (or last followed) in this session; in a new session the
    collection's newest job (a running one is followed again when the page is opened
    later, an ended one says how it ended); after a switch only a running one."""
    unfinished = [j for j in jobs if not j.finished]
    key = _job_key(collection)
    if key not in state:
        return unfinished[0] if unfinished else (jobs[0] if jobs else None)
    if job_id := state[key]:
        try:
            return app.tuning.job(job_id)
        except RagError:
            state[key] = ""  # gone (the records were reset)
    return unfinished[0] if unfinished else None


# -- what is in use --------------------------------------------------------------------------


def model_line(current: str, tuned: TunedModelInfo | None) -> None:
    name = escape_markdown(current)
    if tuned is None:
        st.markdown(f"Search uses the **base** embedding model {name}.")
        return
    st.markdown(
        f"Search uses the **tuned** embedding model {name}: tuned from "
        f"{escape_markdown(tuned.base_model)} on {tuned.pairs} "
        f"{SOURCE_NAMES.get(tuned.source, tuned.source)} pair(s), {when(tuned.created)}."
    )
    if line := figures_line(tuned.figures):
        st.caption(f"Held out: {escape_markdown(line)}")


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _scores(figures: Mapping[str, object], side: str) -> Mapping[str, object]:
    found = figures.get(side)
    return found if isinstance(found, Mapping) else {}


def compared(figures: Mapping[str, object]) -> dict[str, str]:
    """Each measure as "base -> tuned" ("hit@5": "0.500 -> 0.625")."""
    base, tuned = _scores(figures, "base"), _scores(figures, "tuned")
    return {
        k: f"{_num(base[k]):.3f} \u2192 {_num(tuned.get(k)):.3f}"
        for k in base
        if "@" in k  # the measures ("hit@5", "mrr@10"), not the question count
    }


def split_line(figures: Mapping[str, object]) -> str:
    """The held-out split's sizes, as the gate used them."""
    test_q, test_d = figures.get("test_questions"), figures.get("test_docs")
    train_q, train_d = figures.get("train_questions"), figures.get("train_docs")
    if test_q is None:
        return ""
    return (f"{test_q} held-out question(s) from {test_d} document(s), {train_q} training "
            f"pair(s) from {train_d}")  # fmt: skip


def _held_out(figures: Mapping[str, object]) -> str:
    """The split's sizes in a table cell."""
    if figures.get("test_questions") is None:
        return ""
    return f"{figures.get('test_questions')} question(s) from {figures.get('test_docs')} doc(s)"


def figures_line(figures: Mapping[str, object]) -> str:
    parts = [f"{k} {v}" for k, v in compared(figures).items()]
    if split := split_line(figures):
        parts.append(split)
    return " \u00b7 ".join(parts)


# -- starting and following a job -------------------------------------------------------------


def _studio_pairs(collection: str) -> list[QAPair]:
    """The studio's reviewed pairs of this collection that know their chunk."""
    if state.get(STUDIO_COLLECTION) != collection:
        return []
    return [p for p in state.get(STUDIO_PAIRS) or [] if p.chunk_id]


def start_form(app: DocChat, collection: str, chunks: int) -> None:
    studio = _studio_pairs(collection)
    sources = [PSEUDO, PAIRS, *([STUDIO] if studio else [])]
    source = st.radio("Questions to tune on", sources, format_func=SOURCES.__getitem__,
                      key=f"tune-source-{collection}")  # fmt: skip
    upload = None
    if source == PAIRS:
        upload = st.file_uploader("Question file", type=["csv", "jsonl", "json"],
                                  key=f"tune-file-{collection}")  # fmt: skip
    elif source == STUDIO:
        st.caption(f"{len(studio)} reviewed pair(s) with their source chunk.")
    else:  # the measured caveat (docs/tuning.md): the gate sees only pseudo-queries
        st.caption(
            "Pseudo-queries are tested on pseudo-queries only. On real questions they "
            "helped one evaluation set's dense search and hurt another's: prefer questions "
            "when you have them (docs/tuning.md)."
        )
    steps, seconds = app.tuning.cost()
    minutes = seconds / 60
    took = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
    st.caption(
        f"It costs minutes of CPU: at most {steps} training steps ({took} here), then "
        f"re-embedding the {chunks} chunk(s). The tuned model is swapped in "
        "only when it finds the passages of held-out questions (documents it never "
        "trained on) better than the model in use; search goes on meanwhile."
    )
    if not st.button("Start tuning", type="primary", key=f"tune-start-{collection}",
                     disabled=source == PAIRS and upload is None):  # fmt: skip
        return
    try:
        job = app.tuning.start(
            collection,
            source=source,
            pairs=upload.getvalue() if upload is not None else b"",
            pairs_name=upload.name if upload is not None else "",
            qa_pairs=studio if source == STUDIO else (),
        )
    except RagError as e:
        st.error(escape_markdown(str(e)))
        return
    state[_job_key(collection)] = job.id
    st.rerun()


def follow(app: DocChat, job_id: str) -> None:
    """The running job's stage, progress and message with a Cancel button, read again
    every `REFRESH_S` in a fragment (the rest of the page stays usable); the whole page
    is drawn again when the job ends (the model in use may have changed)."""

    def panel() -> None:
        try:
            job = app.tuning.job(job_id)
        except RagError as e:
            st.error(escape_markdown(str(e)))
            return
        if job.finished:
            st.rerun()
        stage = STAGES.get(job.stage, job.stage) if job.status != "queued" else "Waiting"
        st.caption(f"Tuning on {SOURCE_NAMES.get(job.source, job.source)}, started "
                   f"{when(job.created)}: {escape_markdown(stage)}")  # fmt: skip
        st.progress(min(max(job.progress, 0.0), 1.0),
                    text=escape_markdown(job.message or stage))  # fmt: skip
        if job.cancel_requested:
            st.caption("Cancelling at the next step\u2026")
        elif st.button("Cancel tuning", key=f"tune-cancel-{job.id}"):
            try:
                app.tuning.cancel(job.id)
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                st.caption("Cancelling at the next step\u2026")

    st.fragment(panel, run_every=REFRESH_S)()


def outcome(job: TuneJob, model: TunedModelInfo | None) -> None:
    """How the job ended, with the gate's figures when it got that far."""
    figures = model.figures if model is not None else {}
    line = "  \n" + escape_markdown(figures_line(figures) or job.message)  # a line break
    started = f"The tuning started {when(job.created)}"
    if job.status == "done":
        st.success(f"{started} is in use: {escape_markdown(job.model)} found the held-out "
                   f"questions' passages better.{line}")  # fmt: skip
    elif job.status == "refused":
        st.warning(f"{started} was not swapped in: the tuned model was not better on the "
                   f"held-out questions, so search keeps its model.{line}")  # fmt: skip
    elif job.status == "failed":
        st.error(f"{started} failed: {escape_markdown(job.error or job.message)}")
    elif job.status == "cancelled":
        st.info(f"{started} was cancelled; search keeps its model.")


# -- the collection's tuned models ----------------------------------------------------------


def models_table(current: str, models: list[TunedModelInfo]) -> None:
    st.dataframe(
        [
            {
                "in use": "\u2713" if m.name == current else "",
                "model": m.name,
                "created": when(m.created),
                "source": SOURCE_NAMES.get(m.source, m.source),
                "pairs": m.pairs,
                "decision": m.decision or "not decided",
                **{f"{k} base \u2192 tuned": v for k, v in compared(m.figures).items()},
                "held out": _held_out(m.figures),
                "training": f"{m.train_s:.0f} s",
            }
            for m in models
        ],
        hide_index=True,
        width="stretch",
    )


def _use(app: DocChat, collection: str, model: str, label: str) -> None:
    """Re-embed the collection with `model` ("": the base) and swap it in, with progress."""
    with st.status(f"Switching to {escape_markdown(label)}\u2026", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"re-embedding {done}/{total} chunks")

        try:
            app.tuning.use(model, collection, progress=progress)
        except RagError as e:
            status.update(label="Switching failed; search keeps its model", state="error")
            st.error(escape_markdown(str(e)))
            return
        status.update(label=f"Search now uses {escape_markdown(label)}", state="complete")
    state[_job_key(collection)] = ""  # the last job's outcome is old news now
    state["library_note"] = f"Search on {collection} now uses {label}."
    st.rerun()


def _label(m: TunedModelInfo) -> str:
    return f"{m.name} \u00b7 {when(m.created)} \u00b7 {m.decision or 'not decided'}"


def switch(app: DocChat, collection: str, current: str, models: list[TunedModelInfo],
           *, busy: bool) -> None:  # fmt: skip
    """One click back to the base model, or over to another tuned model."""
    in_use = next((m for m in models if m.name == current), None)
    others = [m for m in models if m.name != current]
    row = st.container(horizontal=True, vertical_alignment="bottom")
    if in_use is not None and row.button("Use the base model", disabled=busy,
                                         key=f"tune-base-{collection}"):  # fmt: skip
        _use(app, collection, "", f"the base model {in_use.base_model}")
    if not others:
        return
    by_name = {m.name: m for m in others}
    pick = row.selectbox(
        "Tuned model",
        list(by_name),
        format_func=lambda n: _label(by_name[n]),
        key=f"tune-pick-{collection}",
    )
    if row.button("Use this model", disabled=busy or pick is None,
                  key=f"tune-use-{collection}") and pick:  # fmt: skip
        _use(app, collection, pick, f"the tuned model {pick}")
