"""The services on their own, with fakes for what they do not test: the access rules
and background jobs need no Chroma and no model (`rag/services/`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Settings, Upload
from rag.core.errors import AccessDeniedError, JobNotFoundError
from rag.core.models import IngestResult
from rag.records import open_database
from rag.services.gate import Gate, owner
from rag.services.resources import LazyEmbedder, WriteLocks
from rag.services.uploads import UploadService
from rag.team.access import LOCAL, READER, Sharing, User
from rag.team.sharing import SharingStore
from tests.fixtures.fakes import HashEmbedder

ANN, BOB = User("u-ann", "ann"), User("u-bob", "bob")
USERS = {u.id: u for u in (ANN, BOB, LOCAL)}  # who each id is now (`Accounts.current_user`)


class NamesOnly:
    """A store that knows which collections exist, and nothing else."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def has_collection(self, name: str) -> bool:
        return name in self.names


def gate(tmp_path: Path) -> Gate:
    g = Gate(Settings(data_dir=tmp_path), SharingStore(open_database(Settings(data_dir=tmp_path))))
    g.sharing.set("ann-notes", Sharing(ANN.id, readers=frozenset({BOB.id})))
    return g


def test_gate_applies_the_rules_to_the_sharing_record(tmp_path: Path) -> None:
    g = gate(tmp_path)
    assert g.open(ANN, "ann-notes", "delete_collection") == "ann-notes"
    assert g.may(BOB, "read", "ann-notes") and not g.may(BOB, "upload", "ann-notes")
    assert g.role(BOB, "ann-notes") == READER and g.role(User("u-c", "carol"), "ann-notes") == ""
    assert g.role(User("u-x", "bob"), "ann-notes") == ""  # the name is not who
    with pytest.raises(AccessDeniedError):
        g.open(BOB, "ann-notes", "delete_document")
    with pytest.raises(AccessDeniedError):
        g.share(BOB, "ann-notes", Sharing(BOB.id))
    assert g.name(None) == "default" and owner(LOCAL) == "local" and owner(ANN) == "u-ann"


def test_uploads_refused_at_once_and_jobs_kept_to_their_user(tmp_path: Path) -> None:
    ran: list[tuple[str, str, list[str]]] = []

    def runner(user, files, collection, progress, on_result):  # type: ignore[no-untyped-def]
        names = [f.name for f in files]
        ran.append((user.name, collection, names))
        return [IngestResult(n, "indexed") for n in names]

    settings = Settings(data_dir=tmp_path, workers=0)  # a job runs as it is submitted
    uploads = UploadService(settings, db=open_database(settings), store=NamesOnly("ann-notes"),  # type: ignore[arg-type]
                            gate=gate(tmp_path), runner=runner, users=USERS.get)  # fmt: skip
    with pytest.raises(AccessDeniedError, match="taken"):
        uploads.submit(User("u-carol", "carol"), [Upload("a.md", b"a")], "ann-notes")
    with pytest.raises(AccessDeniedError, match="may read"):
        uploads.submit(BOB, [Upload("a.md", b"a")], "ann-notes")
    job = uploads.submit(BOB, [Upload("b.md", b"b")], "bob-notes")
    assert ran == [("bob", "bob-notes", ["b.md"])]
    assert uploads.job(BOB, job.id).id == job.id
    with pytest.raises(JobNotFoundError):
        uploads.job(ANN, job.id)  # not hers
    assert [j.id for j in uploads.jobs(LOCAL)] == [job.id]  # an administrator sees all


def test_the_embedder_loads_on_first_use_only() -> None:
    built: list[HashEmbedder] = []
    lazy = LazyEmbedder(lambda: built.append(HashEmbedder()) or built[-1])
    assert not lazy.loaded and not built
    assert lazy.get() is lazy.get() and lazy.loaded and len(built) == 1
    locks = WriteLocks()
    assert locks("a") is locks("a") and locks("a") is not locks("b")


def test_workers_not_started_for_zero_nor_again_once_stopped(tmp_path: Path) -> None:
    def runner(*args: object) -> list[IngestResult]:
        return []

    a = Settings(data_dir=tmp_path / "a", workers=0)
    none = UploadService(a, db=open_database(a), store=NamesOnly(), gate=gate(tmp_path),  # type: ignore[arg-type]
                         runner=runner, users=USERS.get)  # fmt: skip
    assert none.start_workers() is None
    assert not (tmp_path / "a" / "jobs.db").exists()  # no queue opened for nothing
    b = Settings(data_dir=tmp_path / "b", workers=1)
    some = UploadService(b, db=open_database(b), store=NamesOnly(), gate=gate(tmp_path),  # type: ignore[arg-type]
                         runner=runner, users=USERS.get)  # fmt: skip
    workers = some.start_workers()
    assert workers is not None and some.start_workers() is workers
    some.stop_workers()
    assert workers.stopped and some.start_workers() is None  # a closed engine takes no jobs
