"""The fine-tuning studio's engine against the fake OpenAI server: pairs, resume,
validation, export, import, jobs that succeed and fail, the 4-way comparison, the CLI.

Nothing is patched: the `openai` client talks HTTP to tests/fixtures/fake_openai.py, whose
default reply to a request for JSON pairs is made from the passage it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag import (
    LLM,
    ConfigError,
    DatasetError,
    DocChat,
    DocumentNotFoundError,
    FineTuneJobs,
    GenerationProgress,
    LLMError,
    QAPair,
    Settings,
    build_training_set,
    compare,
    default_system_prompt,
    drop_invalid,
    generate_pairs,
    load_journal,
    select_chunks,
    validate_examples,
    validate_pairs,
)
from rag import cli as rag_cli
from rag.finetune.pairs import DECLINE_ANSWER
from rag.records.database import Database, database_url
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder

CATS = (
    b"# Cats\n\nCats sleep sixteen hours a day in warm places. They purr when they are "
    b"content and also when they are hurt.\n\n## Food\n\nCats eat fish and mice. A cat "
    b"needs taurine in its food, or its eyes and heart suffer.\n"
)
DOGS = (
    b"Dogs bark at strangers who come near the house. Dogs love long walks in the park "
    b"every morning. A dog can learn more than a hundred words.\n"
)
SYSTEM = default_system_prompt("pets")


@pytest.fixture
def llm_app(settings: Settings, openai_server: FakeOpenAIServer) -> Iterator[DocChat]:
    configured = settings.with_(
        openai_base_url=openai_server.base_url,
        openai_api_key="test-key",
        llm_max_retries=0,
        llm_timeout=5.0,
    )
    app = DocChat.open(configured, embedder=HashEmbedder())
    app.ingest("cats.md", CATS)
    app.ingest("dogs.txt", DOGS)
    yield app


def _llm(app: DocChat) -> LLM:
    assert app.llm is not None
    return app.llm


def _pairs(n: int) -> list[QAPair]:
    return [
        QAPair(f"Question number {i}?", f"Answer {i}.", f"d:{i}", "d", "f.md") for i in range(n)
    ]


# ---- generation -----------------------------------------------------------------------


def test_generate_grounded_pairs_with_sources_cost_and_progress(
    llm_app: DocChat, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    chunks = select_chunks(llm_app.services.store.all_chunks("default"))
    assert len(chunks) >= 3
    seen: list[GenerationProgress] = []
    result = generate_pairs(
        chunks,
        _llm(llm_app),
        journal=tmp_path / "pairs.jsonl",
        per_chunk=2,
        style="answer like a vet",
        decline=2,
        field="pets",
        progress=seen.append,
    )
    assert result.complete and result.done == result.total == len(chunks) + 1
    grounded = [p for p in result.pairs if p.kind == "grounded"]
    assert len(grounded) == 2 * len(chunks)
    by_id = {c.id: c for c in chunks}
    for p in grounded:
        chunk = by_id[p.chunk_id]
        assert (p.doc_id, p.file, p.page) == (chunk.doc_id, chunk.file, chunk.page)
        assert p.answer in " ".join(chunk.text.split())  # the fake answers from the chunk
        assert p.question.endswith("?")
    declines = [p for p in result.pairs if p.kind == "decline"]
    assert len(declines) == 2 and all(
        p.answer == DECLINE_ANSWER.format(field="pets") for p in declines
    )
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert [p.done for p in seen] == list(range(len(chunks) + 2))
    assert seen[-1].pairs == len(result.pairs) and seen[-1].prompt_tokens == result.prompt_tokens
    system = openai_server.requests[0]["messages"][0]["content"]
    assert "exactly 2" in system and "answer like a vet" in system


def test_stop_and_resume_keeps_pairs_and_cost(
    llm_app: DocChat, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    chunks = select_chunks(llm_app.services.store.all_chunks("default"))
    journal = tmp_path / "run" / "pairs.jsonl"

    def interrupt_after_first(p: GenerationProgress) -> None:
        if p.done == 1:
            raise KeyboardInterrupt  # what a Stop click or Ctrl-C does mid-run

    with pytest.raises(KeyboardInterrupt):
        generate_pairs(chunks, _llm(llm_app), journal=journal, progress=interrupt_after_first)
    first = load_journal(journal)
    assert len(first) == 3 and {p.chunk_id for p in first} == {chunks[0].id}
    with journal.open("a") as f:
        f.write('{"key": "torn')  # a crash in the middle of a write
    openai_server.requests.clear()
    result = generate_pairs(chunks, _llm(llm_app), journal=journal)
    assert result.complete and result.resumed == 1
    assert len(openai_server.requests) == len(chunks) - 1  # the first chunk was not redone
    assert result.pairs[:3] == tuple(first)
    assert len(result.pairs) == 3 * len(chunks)
    assert {p.chunk_id for p in result.pairs} == {c.id for c in chunks}
    again = generate_pairs(chunks, _llm(llm_app), journal=journal)
    assert again.resumed == len(chunks) and again.pairs == result.pairs
    assert again.prompt_tokens == result.prompt_tokens  # earlier cost is remembered


def test_llm_failure_keeps_made_pairs_and_bad_reply_is_retried(
    llm_app: DocChat, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    chunks = select_chunks(llm_app.services.store.all_chunks("default"))
    journal = tmp_path / "pairs.jsonl"
    calls = {"n": 0}

    def reply(body: dict[str, object]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            return "Sorry, I cannot do JSON today."
        return json.dumps({"pairs": [{"question": f"Q{calls['n']}?", "answer": "A."}]})

    openai_server.reply = reply
    openai_server.fail_next("server_error")
    with pytest.raises(LLMError, match="HTTP 500"):
        generate_pairs(chunks, _llm(llm_app), journal=journal, per_chunk=1)
    result = generate_pairs(chunks, _llm(llm_app), journal=journal, per_chunk=1)
    assert not result.complete
    assert [cid for cid, _ in result.failed] == [chunks[0].id]
    assert "unreadable reply" in result.failed[0][1]
    retried = generate_pairs(chunks, _llm(llm_app), journal=journal, per_chunk=1)
    assert retried.complete and len(retried.pairs) == len(chunks)


def test_result_counts_each_land_in_their_own_field(
    llm_app: DocChat, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # Every count differs, so a result built with two of them swapped would fail here.
    chunks = select_chunks(llm_app.services.store.all_chunks("default"))
    journal = tmp_path / "pairs.jsonl"

    def stop_after_first(p: GenerationProgress) -> None:
        if p.done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_pairs(chunks, _llm(llm_app), journal=journal, progress=stop_after_first)
    asked = {"pairs": 0}

    def reply(body: dict[str, object]) -> str:
        if "outside this field" in json.dumps(body["messages"]):
            return json.dumps({"questions": ["What is the weather like?"]})
        asked["pairs"] += 1  # the second chunk answers, the ones after it do not
        return (
            json.dumps({"pairs": [{"question": "Q?", "answer": "A."}]})
            if asked["pairs"] == 1
            else "no JSON"
        )

    openai_server.reply = reply
    result = generate_pairs(chunks, _llm(llm_app), journal=journal, per_chunk=1, decline=1)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert (result.total, result.done, result.resumed) == (len(chunks) + 1, 3, 1)
    assert len(result.failed) == len(chunks) - 2 and len(result.pairs) == 3 + 1 + 1
    assert result.prompt_tokens == sum(r["prompt_tokens"] for r in records)
    assert result.completion_tokens == sum(r["completion_tokens"] for r in records)
    assert result.prompt_tokens > result.completion_tokens > 0  # a passage in, a few words out


def test_sample_is_seeded_and_documents_can_be_chosen(llm_app: DocChat) -> None:
    chunks = list(llm_app.services.store.all_chunks("default"))
    one = select_chunks(chunks, sample=2, seed=7)
    assert len(one) == 2 and one == select_chunks(reversed(chunks), sample=2, seed=7)
    dogs = (
        llm_app.documents()[-1]
        if llm_app.documents()[-1].name == "dogs.txt"
        else llm_app.documents()[0]
    )
    only = select_chunks(chunks, doc_ids={dogs.doc_id})
    assert only and {c.file for c in only} == {"dogs.txt"}


# ---- validation and export ---------------------------------------------------------------


def test_validation_reports_typed_issues_and_blocks_export() -> None:
    pairs = [
        *_pairs(10),
        QAPair("What is empty?", "   "),
        QAPair("question number 3?", "Another answer."),  # same question, other case
        QAPair("Long?", "word " * 400),
    ]
    report = validate_pairs(pairs, system_prompt=SYSTEM, token_limit=300)
    codes = {(i.row, i.code) for i in report.errors}
    assert codes == {(10, "empty"), (11, "duplicate"), (12, "too_long")}
    assert "row 4" in next(i.message for i in report.errors if i.code == "duplicate")
    assert not report.ok and report.bad_rows == {10, 11, 12}
    assert "3 error(s)" in report.summary()
    with pytest.raises(DatasetError, match="3 problem"):
        build_training_set(pairs, system_prompt=SYSTEM, token_limit=300)
    assert drop_invalid(pairs, report) == pairs[:10]
    examples: list[object] = [
        {"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "user", "content": "hi"}]},
        {"prompt": "old format"},
        "not an object",
    ]
    issues = validate_examples(examples).issues
    assert [(i.row, i.code) for i in issues if i.severity == "error"] == [
        (0, "role"),
        (1, "no_answer"),
        (2, "format"),
        (3, "format"),
    ]
    assert [i.code for i in issues if i.severity == "warning"] == ["few"]  # fewer than 10


def test_export_is_openai_chat_format_split_in_train_and_validation(tmp_path: Path) -> None:
    pairs = _pairs(12)
    training = build_training_set(pairs, system_prompt=SYSTEM, validation_fraction=0.25, seed=1)
    assert (training.train_examples, training.validation_examples) == (9, 3)
    assert training.report.ok and not training.report.warnings
    lines = training.train_jsonl.splitlines() + training.validation_jsonl.splitlines()
    examples = [json.loads(line) for line in lines]
    assert all(set(e) == {"messages"} for e in examples)
    assert all(
        [m["role"] for m in e["messages"]] == ["system", "user", "assistant"] for e in examples
    )
    assert {e["messages"][0]["content"] for e in examples} == {SYSTEM}
    assert sorted(e["messages"][1]["content"] for e in examples) == sorted(
        p.question for p in pairs
    )
    assert (
        build_training_set(pairs, system_prompt=SYSTEM, validation_fraction=0.25, seed=1)
        == training
    )
    paths = training.write(tmp_path / "out")
    assert [p.name for p in paths] == ["train.jsonl", "validation.jsonl"]
    assert paths[0].read_text() == training.train_jsonl
    no_val = build_training_set(pairs, validation_fraction=0)
    assert (
        no_val.validation_examples == 0 and no_val.write(tmp_path / "o2")[0].name == "train.jsonl"
    )
    assert '"system"' not in no_val.train_jsonl  # no system prompt given, none written
    with pytest.raises(DatasetError, match="no pairs"):
        build_training_set([])


# ---- jobs --------------------------------------------------------------------------------


def _training(n: int = 12) -> tuple[str, str]:
    training = build_training_set(_pairs(n), system_prompt=SYSTEM)
    return training.train_jsonl, training.validation_jsonl


def test_job_succeeds_and_its_model_answers(
    llm_app: DocChat, openai_server: FakeOpenAIServer
) -> None:
    train, validation = _training()
    jobs = FineTuneJobs(_llm(llm_app), llm_app.services.records, "u-ann")
    job = jobs.start(
        train,
        validation,
        base_model="gpt-4o-mini",
        epochs=2,
        suffix="My Pets!",
        collection="default",
        examples=10,
    )
    assert job.status == "validating_files" and not job.done and job.epochs == 2
    uploaded = {f["id"]: f for f in openai_server.files.values()}
    assert {f["purpose"] for f in uploaded.values()} == {"fine-tune"}
    assert {f["filename"] for f in uploaded.values()} == {"train.jsonl", "validation.jsonl"}
    assert openai_server.jobs[job.id]["suffix"] == "my-pets"
    updates: list[str] = []
    done = jobs.wait(job.id, interval=0, on_update=lambda j: updates.append(j.status))
    assert updates == ["queued", "running", "succeeded"]
    assert done.status == "succeeded" and done.fine_tuned_model.startswith(
        "ft:gpt-4o-mini:docchat:"
    )
    assert done.collection == "default" and done.examples == 10  # kept from the start
    messages = [e.message for e in jobs.events(job.id)]
    assert messages[0].startswith("Validating training file") and "successfully" in messages[-1]
    restarted = Database(database_url(llm_app.settings))  # a restart reads the record
    again = FineTuneJobs(_llm(llm_app), restarted, "u-ann")
    assert [j.id for j in again.history()] == [job.id]
    assert again.fine_tuned_models() == [done.fine_tuned_model]
    assert again.history() == [done]
    assert FineTuneJobs(_llm(llm_app), restarted, "u-bob").history() == []  # ann's only
    reply = _llm(llm_app).complete([{"role": "user", "content": "Hi"}], model=done.fine_tuned_model)
    assert reply.model == done.fine_tuned_model


def test_job_failure_and_cancel_are_recorded(
    llm_app: DocChat, openai_server: FakeOpenAIServer
) -> None:
    train, _ = _training()
    jobs = FineTuneJobs(_llm(llm_app), llm_app.services.records)
    openai_server.fine_tune_outcome = "failed"
    openai_server.fine_tune_polls = 1
    failed = jobs.wait(jobs.start(train, base_model="gpt-4o-mini").id, interval=0)
    assert failed.status == "failed" and failed.done and not failed.fine_tuned_model
    assert failed.error == openai_server.fine_tune_error
    assert any("failed" in e.message for e in jobs.events(failed.id))
    openai_server.fine_tune_outcome = "succeeded"
    broken = jobs.wait(jobs.start('{"prompt": "x"}\n', base_model="gpt-4o-mini").id, interval=0)
    assert broken.status == "failed" and "no 'messages'" in broken.error
    openai_server.fine_tune_polls = 5
    cancelled = jobs.cancel(jobs.start(train, base_model="gpt-4o-mini").id)
    assert cancelled.status == "cancelled"
    assert {j.status for j in jobs.history()} == {"failed", "cancelled"}
    with pytest.raises(LLMError, match=r"Could not start the fine-tuning job.*not available"):
        jobs.start(train, base_model="no-such-model")
    with pytest.raises(DatasetError):
        jobs.start("  ", base_model="gpt-4o-mini")
    with pytest.raises(ConfigError):
        jobs.start(train, base_model="gpt-4o-mini", epochs=0)


def test_docchat_serves_the_pages_jobs_and_chunks(llm_app: DocChat, app: DocChat) -> None:
    with ThreadPoolExecutor(8) as pool:  # sessions opening the page at once get one object
        built = list(pool.map(lambda _: llm_app.fine_tune_jobs(), range(8)))
    assert all(j is built[0] for j in built) and built[0] is llm_app.fine_tune_jobs()
    assert built[0].records is llm_app.services.records and built[0].owner == "local"
    with pytest.raises(ConfigError, match="needs an LLM"):
        app.fine_tune_jobs()
    chunks = llm_app.all_chunks()
    assert {c.file for c in chunks} == {"cats.md", "dogs.txt"}
    assert llm_app.chunk(chunks[-1].id, collection="default") == chunks[-1]
    with pytest.raises(DocumentNotFoundError, match="no chunk"):
        llm_app.chunk(f"{chunks[0].doc_id}:999")


# ---- compare -----------------------------------------------------------------------------


def test_compare_four_ways(llm_app: DocChat, openai_server: FakeOpenAIServer) -> None:
    openai_server.models.append("ft:gpt-4o-mini:docchat:abc")
    openai_server.requests.clear()
    seen: list[str] = []
    result = compare(
        llm_app,
        "What do cats eat?",
        fine_tuned_model="ft:gpt-4o-mini:docchat:abc",
        system_prompt=SYSTEM,
        on_variant=lambda v: seen.append(v.key),
    )
    assert seen == ["base", "base+rag", "tuned", "tuned+rag"]
    by_key = {v.key: v for v in result.variants}
    assert [r["model"] for r in openai_server.requests] == [
        "gpt-4o-mini",
        "gpt-4o-mini",
        "ft:gpt-4o-mini:docchat:abc",
        "ft:gpt-4o-mini:docchat:abc",
    ]
    for v in result.variants:
        assert v.text and not v.error and v.seconds > 0 and v.prompt_tokens > 0
    assert not by_key["base"].sources and not by_key["tuned"].sources
    assert by_key["base+rag"].sources and by_key["base+rag"].sources[0].chunk.file == "cats.md"
    assert by_key["tuned+rag"].prompt_tokens > by_key["tuned"].prompt_tokens
    alone = openai_server.requests[0]["messages"]
    assert alone == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What do cats eat?"},
    ]
    two = compare(llm_app, "What do cats eat?", fine_tuned_model=None)
    assert [v.key for v in two.variants] == ["base", "base+rag"]
    missing = compare(llm_app, "What do cats eat?", fine_tuned_model="ft:gone")
    assert "does not exist" in missing.variants[2].error and missing.variants[0].text


def test_compare_needs_an_llm(app: DocChat) -> None:
    with pytest.raises(ConfigError, match="needs an LLM"):
        compare(app, "anything?", fine_tuned_model=None)


# ---- command line --------------------------------------------------------------------------


def test_cli_finetune_data(
    llm_app: DocChat,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(llm_app.settings.data_dir))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    out = tmp_path / "set"
    code = rag_cli.main(
        [
            "finetune-data",
            "--collection",
            "default",
            "--out",
            str(out),
            "--per-chunk",
            "4",
            "--sample",
            "2",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in out.iterdir()) == [
        "eval_questions.jsonl",
        "pairs.jsonl",
        "train.jsonl",
        "validation.jsonl",
    ]
    train = (out / "train.jsonl").read_text().splitlines()
    validation = (out / "validation.jsonl").read_text().splitlines()
    assert len(train) + len(validation) == 8 and "6 train + 2 validation" in printed.out
    assert "warning: only 8 example(s)" in printed.err
    rows = [json.loads(line) for line in (out / "eval_questions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["chunk_id"] and r["file"] for r in rows)
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert rag_cli.main(["finetune-data", "--collection", "default", "--out", str(out)]) == 1
    assert "needs an LLM" in capsys.readouterr().err
