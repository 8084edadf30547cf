"""Scheduled web refreshes: a collection's schedule set by its editors (the API, the CLI,
the Library page), a due collection refreshed by one pass of the watcher as its owner
(workers 0: the refresh runs in the pass), one not due left alone, and several watchers
at once queueing a due refresh once, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import DocChat, Settings
from rag.core.errors import AccessDeniedError, CollectionNotFoundError, ConfigError
from rag.jobs.web_refresh import RefreshQueue
from rag.records.database import open_database
from rag.team.access import Sharing
from rag.team.schedules import Schedules
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.local_web import LocalSite, Reply, local_site, only_loopback
from tests.integration.test_web_sources import HTML, Changing, page, static

HOUR = 3600.0


@pytest.fixture
def site() -> Iterator[LocalSite]:
    quiet = page("Quiet page", [("q", "Quiet", "Nobody refreshes this one yet.")])
    routes = {"/changing": Changing(), "/static": static, "/quiet": Reply(200, quiet, HTML)}
    with local_site(routes) as s:  # (no robots.txt: a 404, so everything is allowed)
        yield s


@pytest.fixture
def team(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocChat]:
    only_loopback(monkeypatch)
    web = dataclasses.replace(settings, url_allow="127.0.0.1/32", url_delay=0.0, workers=0,
                              auth="accounts")  # fmt: skip
    app = DocChat.open(web, embedder=HashEmbedder())
    yield app
    app.close()


def test_a_due_collection_is_refreshed_by_one_watcher_pass_as_its_owner(
    team: DocChat, site: LocalSite, caplog: pytest.LogCaptureFixture
) -> None:
    accounts = team.services.team.signin.accounts
    ann = accounts.add("ann", "correct horse").user
    bob = accounts.add("bob", "correct horse").user
    owner, reader = team.as_user(ann), team.as_user(bob)
    u = site.url
    owner.web.add([f"{u}/changing", f"{u}/static"], collection="news")
    owner.web.add([f"{u}/quiet"], collection="quiet")
    owner.share("news", Sharing(ann.id, readers=frozenset({bob.id})))

    # Who may: the editors set it, a reader reads it, someone else neither.
    assert owner.web.schedule_of("news") == 0.0  # never, until set
    owner.web.schedule(1, "news")
    owner.web.schedule(24, "quiet")
    assert reader.web.schedule_of("news") == 1.0
    with pytest.raises(AccessDeniedError):
        reader.web.schedule(2, "news")
    with pytest.raises(AccessDeniedError):
        reader.web.schedule_of("quiet")
    with pytest.raises(ConfigError, match="0 \\(never\\)"):
        owner.web.schedule(-1, "news")
    with pytest.raises(CollectionNotFoundError):
        team.web.schedule(1, "missing")
    assert owner.web.schedule_of("news") == 1.0

    before = {d.name: d.doc_id for d in team.documents("news")}
    quiet_before = {d.name: d.doc_id for d in team.documents("quiet")}
    site.routes["/changing"].version = 2  # type: ignore[union-attr]
    site.seen.clear()
    queue = team.services.uploads.queue
    assert queue.refresh_due(time.time() + 0.5 * HOUR) == []  # not due yet
    assert site.seen == []
    later = time.time() + 1.5 * HOUR  # news is due, quiet (every 24 hours) is not
    with caplog.at_level(logging.INFO, logger="rag.jobs.web_refresh"):
        assert queue.refresh_due(later) == ["news"]
    assert "'news': 1 changed, 1 unchanged, 0 failed" in caplog.text
    after = {d.name: d.doc_id for d in team.documents("news")}
    assert [n for n in after if after[n] != before[n]] == [f"{u}/changing"]
    assert after[f"{u}/static"] == before[f"{u}/static"]
    assert {s.path for s in site.seen} - {"/robots.txt"} == {"/changing", "/static"}
    assert {d.name: d.doc_id for d in team.documents("quiet")} == quiet_before
    assert queue.refresh_due(later) == []  # queued once per period
    assert queue.refresh_due(later + 1.1 * HOUR) == ["news"]  # the next period

    # The schedule follows a rename and goes with a deleted collection.
    owner.rename_collection("news", "news2")
    assert owner.web.schedule_of("news2") == 1.0
    owner.delete_collection("news2")
    owner.web.add([f"{u}/static"], collection="news2")
    assert owner.web.schedule_of("news2") == 0.0

    # An owner disabled since: the refresh is skipped (nothing runs without rights).
    team.services.team.users(team.user).set_disabled("ann", True)
    site.seen.clear()
    with caplog.at_level(logging.WARNING, logger="rag.jobs.web_refresh"):
        assert queue.refresh_due(later + 48 * HOUR) == ["quiet"]
    assert "owner was removed or is disabled" in caplog.text
    assert site.seen == []


def test_the_refresh_command_sets_the_schedule(
    team: DocChat, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli.commands import build_parser

    team.web.add([f"{site.url}/quiet"], collection="web")
    fetched = len(site.seen)
    args = build_parser().parse_args(["refresh", "--collection", "web", "--every", "6"])
    assert args.fn(team, args) == 0
    assert capsys.readouterr().out.strip() == "web: web pages refreshed every 6 hours"
    assert team.web.schedule_of("web") == 6.0
    assert len(site.seen) == fetched  # set, not refreshed now
    args = build_parser().parse_args(["refresh", "--collection", "web", "--every", "0"])
    assert args.fn(team, args) == 0
    assert team.web.schedule_of("web") == 0.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return Settings(data_dir=tmp_path, database_url=url)


def test_watchers_at_once_queue_a_due_refresh_once(db_settings: Settings) -> None:
    sent: list[str] = []
    lock = threading.Lock()

    def send(name: str) -> None:
        with lock:
            sent.append(name)

    # Each watcher with its own connections, as in processes of their own.
    watchers = [RefreshQueue(open_database(db_settings), runner=None, users=None, send=send)
                for _ in range(6)]  # fmt: skip
    schedules = Schedules(open_database(db_settings))
    schedules.set("due", 2, now=1_000.0)
    schedules.set("later", 5, now=1_000.0)
    schedules.set("off", 0, now=0.0)
    start = threading.Barrier(len(watchers))

    def watch(w: RefreshQueue) -> None:
        start.wait()
        w.enqueue_due(1_000.0 + 3 * HOUR)

    threads = [threading.Thread(target=watch, args=(w,)) for w in watchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sent == ["due"]
    assert schedules.of("due").refreshed == 1_000.0 + 3 * HOUR
    assert schedules.of("nothing").hours == 0.0  # no row: never


def test_the_library_page_sets_the_schedule(
    fake_embedder: None, site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.app import start

    only_loopback(monkeypatch)
    monkeypatch.setenv("DOCCHAT_URL_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("DOCCHAT_URL_DELAY", "0")
    app = DocChat.open(Settings.from_env())
    try:
        app.web.add([f"{site.url}/quiet"])
    finally:
        app.close()
    at = start("pages/library.py")
    box = next(n for n in at.number_input if n.label.startswith("Refresh every"))
    assert box.value == 0.0
    box.set_value(12.0)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.success][-1] == "Refreshed every 12 hours."
    app = DocChat.open(Settings.from_env())
    try:
        assert app.web.schedule_of() == 12.0
    finally:
        app.close()
