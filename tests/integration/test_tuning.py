"""Tuning a collection's embedding model as a job, end to end with the real model (a
step or two of training on a dozen pairs; workers 0, so a job has run when `start`
returns): the held-out split by document, the gate's refusal, the swap, the switch
back to the base model and forward again, Cancel, who may tune, and `python -m rag tune`.

The refusal is real: with four small documents the base model already ranks every
held-out question's chunk first (the test checks that premise), and a model that is
not strictly better is refused. The swap needs a model that IS better, which one or
two steps cannot promise: that test replaces the gate's rule (`passes`, tested on its
own in tests/unit/test_tune_gate.py) with one that says yes, and checks what the swap
does. The job's bookkeeping without a model is in test_tune_records.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rag import DocChat, Settings
from rag.cli.commands import main
from rag.components.embeddings import Embedder
from rag.components.tuned_models import is_tuned
from rag.core.errors import (
    AccessDeniedError,
    JobNotFoundError,
    ModelNotFoundError,
    TuningError,
)
from rag.finetune.dataset import QAPair
from rag.jobs.tune_records import CANCELLED, DONE, REFUSED, TuneJob, TuneRequest
from rag.team.access import Sharing, User
from tests.fixtures.fakes import HashEmbedder, register_fake_embedder

pytestmark = pytest.mark.slow

BASE = "all-MiniLM-L6-v2"
DOCS = {
    "cats.md": (
        "# Cats\n\nDomestic cats sleep for sixteen hours on an ordinary day. They hunt "
        "mostly at dawn and at dusk when mice are about.\n\nA cat purrs when it is content "
        "and sometimes when it is hurt. Kittens learn to purr in their first week.\n\n"
        "Cats groom their fur with rough tongues covered in tiny hooks. Grooming also "
        "cools them down on hot summer afternoons.\n"
    ),
    "volcanoes.md": (
        "# Volcanoes\n\nA volcano erupts when molten rock rises through cracks in the "
        "crust. The magma chamber sits several kilometres below the summit.\n\nVolcanic "
        "ash can ground aircraft across a whole continent for days. Fine ash particles "
        "damage jet engines badly.\n\nLava flows move slowly enough for people to walk "
        "away from them. Basalt lava is runnier than rhyolite lava.\n"
    ),
    "bread.md": (
        "# Bread\n\nBread dough rises because yeast turns sugar into carbon dioxide gas. "
        "Warm kitchens make the dough rise faster.\n\nKneading the dough develops gluten "
        "strands that trap the gas bubbles. Rye flour has little gluten and makes dense "
        "loaves.\n\nA sourdough starter keeps wild yeast and lactic bacteria alive for "
        "years. Bakers feed their starter with flour and water.\n"
    ),
    "chess.md": (
        "# Chess\n\nA chess game opens with each player moving pawns toward the centre "
        "squares. Knights jump over other pieces in an L shape.\n\nCastling moves the "
        "king two squares toward a rook for safety. Castling is not allowed while the "
        "king is in check.\n\nAn endgame with king and queen against a lone king is "
        "always a win. Stalemate ends the game as a draw.\n"
    ),
}
# (question, a verbatim answer, its document): three about each document.
QUESTIONS = [
    ("How many hours a day do cats sleep?", "sleep for sixteen hours", "cats.md"),
    ("Why does a cat purr?", "purrs when it is content", "cats.md"),
    ("What covers a cat's tongue?", "covered in tiny hooks", "cats.md"),
    ("Why does a volcano erupt?", "molten rock rises through cracks", "volcanoes.md"),
    ("Can volcanic ash stop aircraft?", "ground aircraft across a whole", "volcanoes.md"),
    ("Which lava is runnier, basalt or rhyolite?", "Basalt lava is runnier", "volcanoes.md"),
    ("What makes bread dough rise?", "yeast turns sugar into carbon", "bread.md"),
    ("Why knead bread dough?", "develops gluten strands", "bread.md"),
    ("What lives in a sourdough starter?", "wild yeast and lactic bacteria", "bread.md"),
    ("How does a knight move in chess?", "jump over other pieces", "chess.md"),
    ("When is castling not allowed?", "not allowed while the king is in check", "chess.md"),
    ("How does stalemate end a chess game?", "Stalemate ends the game", "chess.md"),
]
PAIRS_FILE = "\n".join(
    json.dumps({"question": q, "answer": a, "source": f}) for q, a, f in QUESTIONS
).encode()


def _ids(app: DocChat, name: str) -> dict[str, str]:
    return {c.id: c.text for c in app.all_chunks(name)}


@pytest.fixture
def app(settings: Settings, real_embedder: Embedder) -> Iterator[DocChat]:
    # torch: the tuned model loads as it was saved (the onnx-int8 export is
    # test_tuned_models.py's); workers 0: a job runs inside `start`.
    tuned = replace(settings, embedding_backend="torch", workers=0)
    app = DocChat.open(tuned, embedder=real_embedder)
    app.create_collection("notes", chunk_tokens=48, chunk_overlap=0)
    for name, text in DOCS.items():
        assert app.ingest(name, text.encode(), collection="notes").status == "indexed"
    yield app
    app.close()


def _untouched(app: DocChat, before: dict[str, str]) -> None:
    assert app.tuning.current("notes") == BASE
    assert _ids(app, "notes") == before
    assert app.services.store.collection_names() == ["notes"]  # no copy left behind


def test_a_job_from_a_question_file_is_split_by_document_and_refused_when_not_better(
    app: DocChat,
) -> None:
    before = _ids(app, "notes")
    job = app.tuning.start("notes", source="pairs", pairs=PAIRS_FILE,
                           pairs_name="questions.jsonl", max_steps=1)  # fmt: skip
    assert job.status == REFUSED, job.error
    assert "not better" in job.message and is_tuned(job.model)
    [model] = app.tuning.models("notes")
    assert model.name == job.model and model.decision == "refused"
    assert model.source == "pairs" and model.base_model == BASE
    f = dict(model.figures)
    # The split is by document: each document's questions all on one side.
    held, trained = set(f["held_out_docs"]), set(f["trained_docs"])
    docs = {d.doc_id: d.name for d in app.documents("notes")}
    assert held and trained and not held & trained and held | trained == set(docs)
    on_test = sum(1 for _, _, name in QUESTIONS if name in {docs[d] for d in held})
    assert (f["test_questions"], f["train_questions"]) == (on_test, len(QUESTIONS) - on_test)
    assert model.pairs == f["train_questions"]  # only the training side trained it
    # The premise of the refusal: the base already ranks every held-out chunk first, so
    # no model can be strictly better.
    assert f["base"] == {"hit@5": 1.0, "mrr@10": 1.0, "questions": on_test}
    _untouched(app, before)
    assert app.tuning.jobs("notes") == [job] and app.tuning.job(job.id) == job


def test_a_better_model_is_swapped_in_and_the_switch_goes_back_and_forth(
    app: DocChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.services.tuning.passes", lambda *_: True)
    before = _ids(app, "notes")
    job = app.tuning.start("notes", source="pseudo", max_steps=1)
    assert job.status == DONE, job.error
    assert "swapped in" in job.message
    assert app.tuning.current("notes") == job.model and is_tuned(job.model)
    [model] = app.tuning.models("notes")
    assert model.decision == "swapped" and model.source == "pseudo"
    assert set(model.figures) >= {"base", "tuned", "test_questions", "train_docs"}
    assert _ids(app, "notes") == before  # the same chunks, ids and text: only vectors moved
    assert app.services.store.collection_names() == ["notes"]
    _, hits = app.search("How long do cats sleep?", collection="notes")
    assert hits and hits[0].chunk.file == "cats.md"
    # A new document is embedded with the tuned model (the collection's).
    more = b"# Tea\n\nGreen tea leaves are steamed soon after picking to keep them green.\n"
    assert app.ingest("tea.md", more, collection="notes").status == "indexed"
    after = _ids(app, "notes")

    progress: list[tuple[int, int]] = []
    info = app.tuning.use("", "notes", progress=lambda d, t: progress.append((d, t)))
    assert info.model == BASE == app.tuning.current("notes")
    assert _ids(app, "notes") == after and progress[-1] == (len(after), len(after))
    _, hits = app.search("Which leaves are steamed after picking?", collection="notes")
    assert hits and hits[0].chunk.file == "tea.md"
    assert app.tuning.use(job.model, "notes").model == job.model  # forward again
    assert app.tuning.use(job.model, "notes").model == job.model  # already: nothing to do
    with pytest.raises(ModelNotFoundError):
        app.tuning.use("tuned:0123456789ab", "notes")
    with pytest.raises(TuningError, match="not a model of"):
        app.tuning.use("another-model", "notes")


def test_cancel_stops_the_job_and_leaves_the_collection_as_it_was(app: DocChat) -> None:
    before = _ids(app, "notes")
    ended: list[TuneJob] = []
    # 1000 steps: only the cancel can end this job within the test's time.
    run = threading.Thread(
        target=lambda: ended.append(app.tuning.start("notes", source="pseudo", max_steps=1000))
    )
    run.start()
    deadline = time.monotonic() + 120
    while not (jobs := app.tuning.jobs("notes")) or jobs[0].stage != "training":
        assert time.monotonic() < deadline and run.is_alive()
        time.sleep(0.1)
    app.tuning.cancel(jobs[0].id)
    run.join(timeout=120)
    assert ended and ended[0].status == CANCELLED and ended[0].cancel_requested
    _untouched(app, before)
    assert app.tuning.models("notes") == []  # nothing trained was kept
    assert not list((Path(app.settings.data_dir) / "tuned").glob(".training-*"))


def test_only_editors_tune_and_a_job_is_its_user_s(settings: Settings) -> None:
    app = DocChat.open(replace(settings, auth="accounts", workers=0), embedder=HashEmbedder())
    try:
        ann, bob = User("u" + "a" * 24, "ann"), User("u" + "b" * 24, "bob")
        owner, reader = app.as_user(ann), app.as_user(bob)
        owner.ingest("cats.md", DOCS["cats.md"].encode(), collection="notes")
        owner.share("notes", Sharing(ann.id, readers=frozenset({bob.id})))
        with pytest.raises(AccessDeniedError):
            reader.tuning.start("notes", source="pseudo")
        with pytest.raises(AccessDeniedError):
            reader.tuning.use("", "notes")
        assert reader.tuning.models("notes") == [] and reader.tuning.current("notes") == "fake-hash"
        # Bad sources are refused at once, before anything is queued.
        with pytest.raises(TuningError, match="at least 2 documents"):
            owner.tuning.start("notes", source="pseudo")
        unknown = b'{"question": "q", "answer": "not in any document"}'
        with pytest.raises(TuningError, match="no row names a chunk"):
            owner.tuning.start("notes", source="pairs", pairs=unknown, pairs_name="q.jsonl")
        with pytest.raises(TuningError, match="names a chunk"):
            owner.tuning.start("notes", source="studio", qa_pairs=[QAPair("q", "a", "x:0")])
        assert owner.tuning.jobs() == []
        # Someone's job is theirs alone (an administrator's view aside).
        job = app.services.uploads.queue.tunes.submit(ann, "notes", "pseudo", TuneRequest())
        with pytest.raises(JobNotFoundError):
            reader.tuning.job(job.id)
        with pytest.raises(JobNotFoundError):
            reader.tuning.cancel(job.id)
        assert reader.tuning.jobs() == [] and [j.id for j in owner.tuning.jobs()] == [job.id]
    finally:
        app.close()


# -- python -m rag tune (in this process: the model and the trainer are loaded already) ----


def _write_docs(folder: Path) -> Path:
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_the_tune_command_runs_a_job_and_prints_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCCHAT_EMBEDDING_BACKEND", "torch")
    assert main(["ingest", str(_write_docs(tmp_path / "docs")), "--collection", "notes"]) == 0
    capsys.readouterr()
    out = tmp_path / "tune.json"
    args = ["--collection", "notes", "--pseudo", "--max-steps", "1", "--json", str(out)]
    assert main(["tune", *args]) == 0
    printed = capsys.readouterr()
    assert "training" in printed.err  # its progress, as it went (each stage seen)
    lines = printed.out.strip().splitlines()
    assert lines[0].startswith("held out: ") and lines[1].startswith("base   hit@5 ")
    assert lines[-1].startswith(("done: ", "refused: ")) and "hit@5" in lines[-1]
    assert any(line.startswith("base (dense)  hit@5 ") for line in lines)  # pseudo: dense too
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["job"]["status"] in (DONE, REFUSED)
    assert result["model"]["name"] == result["job"]["model"]
    assert set(result["model"]["figures"]) >= {"base", "tuned", "test_docs"}


def test_the_tune_command_lists_switches_and_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    register_fake_embedder(monkeypatch)  # nothing here trains
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "data"))
    assert main(["ingest", str(_write_docs(tmp_path / "docs")), "--collection", "notes"]) == 0
    capsys.readouterr()
    assert main(["tune", "--collection", "notes", "--models"]) == 0
    assert capsys.readouterr().out == "in use: fake-hash\n"
    assert main(["tune", "--collection", "notes", "--use", "base"]) == 0
    assert capsys.readouterr().out == "notes uses fake-hash\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "in no document"}\n', encoding="utf-8")
    assert main(["tune", "--collection", "notes", "--pairs", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: bad.jsonl: no row") and len(err.strip().splitlines()) == 1
    assert main(["tune", "--collection", "notes", "--use", "tuned:0123456789ab"]) == 1
    assert capsys.readouterr().err.startswith("error: No tuned embedding model")
