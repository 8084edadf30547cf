"""The bounds on one request, as plain functions: a question's and the chat messages'
length, embedding inputs, the JSON body limit, whose counter a request counts on, and
the rate limit's fixed window over the record store (`RecordCounters`, SQLite in
tmp_path; across processes and on PostgreSQL: tests/integration/test_rate_counters.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

import rag.api.limits as limits_module
from rag.api.limits import (
    MESSAGES_QUESTIONS,
    RateLimit,
    RecordCounters,
    check_embed_inputs,
    check_messages,
    counter_of,
    json_body_limit,
)
from rag.core.errors import ConfigError, LimitExceededError, RagError
from rag.core.settings import Settings
from rag.records.database import Database, open_database
from rag.services.answers import check_length

MB = 1_000_000


def test_a_long_question_is_refused_naming_the_limit_and_its_setting() -> None:
    check_length("x" * 8000, 8000)  # at the limit: fine
    with pytest.raises(LimitExceededError) as e:
        check_length("x" * 8001, 8000)
    assert str(e.value) == (
        "The question is 8,001 characters long, over the limit of 8,000 "
        "(DOCCHAT_MAX_QUESTION_CHARS): shorten it."
    )
    assert "\n" not in str(e.value)  # one line on the command line


def test_a_1mb_question_is_refused_in_well_under_100_ms() -> None:
    question = "Why? " * (MB // 5)
    t0 = time.process_time()
    with pytest.raises(LimitExceededError):
        check_length(question, 8000)
    assert time.process_time() - t0 < 0.1


def test_chat_messages_each_and_together() -> None:
    check_messages(["a" * 10, "b" * 10, "c" * 10], 10)
    with pytest.raises(LimitExceededError, match="The message is 11"):
        check_messages(["a" * 11, "b", "c"], 10)
    with pytest.raises(LimitExceededError, match="The question is 11"):
        check_messages(["a", "b", "c" * 11], 10)
    with pytest.raises(LimitExceededError, match="send less history"):
        check_messages(["a" * 10] * (MESSAGES_QUESTIONS + 1), 10)


def test_embedding_inputs_by_count_and_characters() -> None:
    check_embed_inputs(["abc"] * 4, 4, 12)
    with pytest.raises(LimitExceededError, match="DOCCHAT_MAX_EMBED_INPUTS"):
        check_embed_inputs(["abc"] * 5, 4, 100)
    with pytest.raises(LimitExceededError, match="DOCCHAT_MAX_EMBED_CHARS"):
        check_embed_inputs(["abc"] * 4, 4, 11)
    with pytest.raises(RagError, match="at least one"):
        check_embed_inputs([], 4, 11)


def test_the_json_body_limit_fits_the_longest_allowed_texts_escaped() -> None:
    s = Settings()
    limit = json_body_limit(s)
    assert limit >= 6 * s.max_embed_chars and limit >= 6 * MESSAGES_QUESTIONS * s.max_question_chars
    assert limit < 5 * MB  # and far below what the limits are there to refuse


def test_a_request_counts_on_its_keys_digest_or_its_address() -> None:
    def scope(key: str = "") -> dict[str, object]:
        headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
        return {"type": "http", "headers": headers, "client": ("10.0.0.7", 5555)}

    a = counter_of(scope("dck_a"), key_needed=True)
    assert a.startswith("key:") and "dck_a" not in a and len(a) == 4 + 64
    assert counter_of(scope("dck_b"), key_needed=True) != a
    assert counter_of(scope(), key_needed=True) == "address:10.0.0.7"
    assert counter_of(scope("dck_a"), key_needed=False) == "address:10.0.0.7"


def test_the_rate_limit_setting_is_read_with_limits_notation(tmp_path: Path) -> None:
    db = open_database(Settings(data_dir=tmp_path))
    assert not RateLimit(Settings(rate_limit=""), db).on
    assert not RateLimit(Settings(rate_limit="off"), db).on
    both = RateLimit(Settings(rate_limit="2/second; 100/minute"), db)
    assert [(i.amount, i.GRANULARITY.name) for i in both.items] == [(2, "second"), (100, "minute")]
    with pytest.raises(ConfigError, match="DOCCHAT_RATE_LIMIT='lots'"):
        RateLimit(Settings(rate_limit="lots"), db)


# -- the record store's counters ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(Settings(data_dir=tmp_path))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(limits_module, "time", c)
    return c


def test_a_fixed_window_on_the_record_store(db: Database, clock: Clock) -> None:
    counters = RecordCounters(db)
    limiter = FixedWindowRateLimiter(counters)
    five = parse("5/minute")
    assert [limiter.hit(five, "k") for _ in range(6)] == [True] * 5 + [False]
    assert limiter.hit(five, "other")  # another key counts apart
    key = five.key_for("k")
    assert counters.get(key) == 6
    assert counters.get_expiry(key) == clock.now + 60
    clock.now += 59.9
    assert not limiter.hit(five, "k")
    clock.now += 0.2  # the window ended: a new one starts with this hit
    assert limiter.hit(five, "k")
    assert counters.get(key) == 1 and counters.get_expiry(key) == clock.now + 60
    counters.clear(key)
    assert counters.get(key) == 0 and counters.get_expiry(key) == clock.now
    assert counters.check()


def test_counters_of_ended_windows_are_pruned(db: Database, clock: Clock) -> None:
    counters = RecordCounters(db)
    for i in range(5):
        counters.incr(f"once-{i}", 60)
    clock.now += limits_module.PRUNE_SECONDS + 61
    counters.incr("later", 60)  # the first hit after PRUNE_SECONDS prunes in passing
    rows = db.read(lambda c: c.exec_driver_sql("SELECT key FROM rate_counters").fetchall())
    assert [r[0] for r in rows] == ["later"]
    assert counters.reset() == 1


def test_concurrent_hits_lose_no_count(db: Database) -> None:
    counters = RecordCounters(db)
    start = threading.Barrier(4)

    def hit() -> None:
        start.wait()
        for _ in range(25):
            counters.incr("shared", 60)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counters.get("shared") == 100
