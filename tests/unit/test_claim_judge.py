"""The LLM as a judge of the claims the local check could not decide
(`rag.answering.claim_judge`), against the fake OpenAI server over real HTTP: one call
for the unsure claims, its JSON read strictly, and every way a reply can fail (not JSON,
a claim missing, an unknown verdict, a server error) leaving the local verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from rag.answering.claim_judge import SYSTEM, judge_claims, parse_verdicts
from rag.components.generation import OpenAILLM
from rag.core.models import Chunk, Claim, Hit, Source
from tests.fixtures.fake_openai import FakeOpenAIServer

TEXT = "Cats nap in the sun [1]. Dogs dig holes [2]. Birds sing at dawn. Fish swim [1]."
SOURCES = [
    Source(
        n, Hit(Chunk(doc_id=f"d{n}", file=f"f{n}.txt", index=0, text=t, start=0, end=len(t)), 1.0)
    )
    for n, t in ((1, "Cats sleep in sunny spots. Fish swim in ponds."), (2, "Dogs bark."))
]
CLAIMS = (
    Claim("Cats nap in the sun [1].", 0, 24, "supported", (1,), 1, (0, 26), by="words", sure=False),
    Claim("Dogs dig holes [2].", 25, 44, "supported", (2,), 2, (0, 10), by="words", sure=False),
    Claim(
        "Birds sing at dawn.",
        45,
        64,
        "uncited",
        (),
        reason="no source says this",
        by="words",
        sure=False,
    ),
    Claim("Fish swim [1].", 65, 79, "supported", (1,), 1, (27, 46), by="quote"),
)


@pytest.fixture
def llm(openai_server: FakeOpenAIServer) -> Iterator[OpenAILLM]:
    client = OpenAILLM(api_key="test-key", base_url=openai_server.base_url, model="gpt-4o-mini",
                       max_retries=0)  # fmt: skip
    yield client
    client.close()


def asked(body: dict[str, Any]) -> list[int]:
    """The claim numbers a judge prompt asks about."""
    user = body["messages"][-1]["content"]
    return [int(k) for k in re.findall(r"^(\d+)\. ", user, re.MULTILINE)]


def test_the_unsure_claims_are_re_decided_in_one_call(
    openai_server: FakeOpenAIServer, llm: OpenAILLM
) -> None:
    def judge(body: dict[str, Any]) -> str:
        verdicts = [{"claim": 1, "verdict": "supported", "reason": ""},
                    {"claim": 2, "verdict": "not_found", "reason": "[2] says dogs bark"},
                    {"claim": 3, "verdict": "not_found"}]  # fmt: skip
        return "```json\n" + json.dumps({"verdicts": verdicts}) + "\n```"

    openai_server.reply = judge
    judged = judge_claims(llm, CLAIMS, TEXT, SOURCES)
    assert len(openai_server.requests) == 1
    body = openai_server.requests[0]
    assert asked(body) == [1, 2, 3]  # the sure one is not asked
    assert body["messages"][0]["content"] == SYSTEM and body["temperature"] == 0.0
    user = body["messages"][-1]["content"]
    assert "[1] Cats sleep in sunny spots." in user and "[2] Dogs bark." in user
    assert 'closest in [1]: "Cats sleep in sunny spots."' in user
    assert "(cites no source (check them all))" in user
    cats, dogs, birds, fish = judged
    assert (cats.verdict, cats.by, cats.sure, cats.span) == ("supported", "llm", True, (0, 26))
    assert (dogs.verdict, dogs.reason, dogs.sure) == ("not_found", "[2] says dogs bark", True)
    assert (birds.verdict, birds.reason) == ("uncited", "no source says this")  # cites nothing
    assert fish == CLAIMS[3]


@pytest.mark.parametrize(
    "reply",
    [
        "All supported.",  # not JSON
        '{"verdicts": [{"claim": 1, "verdict": "supported"}]}',  # claims missing
        json.dumps({"verdicts": [{"claim": k, "verdict": "maybe"} for k in (1, 2, 3)]}),
        json.dumps({"verdicts": [{"claim": 1, "verdict": "supported"}] * 3}),  # one claim thrice
        json.dumps([{"claim": k, "verdict": "supported"} for k in (1, 2, 3)]),  # no object
        "Sure! "
        + json.dumps({"verdicts": [{"claim": k, "verdict": "supported"} for k in (1, 2, 3)]}),
    ],
)
def test_a_malformed_reply_leaves_the_local_verdicts(
    openai_server: FakeOpenAIServer, llm: OpenAILLM, reply: str
) -> None:
    openai_server.reply = reply
    assert judge_claims(llm, CLAIMS, TEXT, SOURCES) == CLAIMS
    assert len(openai_server.requests) == 1


def test_a_failing_llm_leaves_the_local_verdicts(
    openai_server: FakeOpenAIServer, llm: OpenAILLM
) -> None:
    openai_server.fail_next("server_error")
    assert judge_claims(llm, CLAIMS, TEXT, SOURCES) == CLAIMS


def test_nothing_unsure_asks_nothing(openai_server: FakeOpenAIServer, llm: OpenAILLM) -> None:
    sure = tuple(c for c in CLAIMS if c.sure)
    assert judge_claims(llm, sure, TEXT, SOURCES) == sure
    assert openai_server.requests == []


def test_parse_verdicts_is_strict() -> None:
    ok = json.dumps({"verdicts": [{"claim": 2, "verdict": "not_found", "reason": "x"},
                                  {"claim": 1, "verdict": "supported"}]})  # fmt: skip
    assert parse_verdicts(ok, 2) == [("supported", ""), ("not_found", "x")]
    assert parse_verdicts(ok, 3) is None
    assert parse_verdicts(ok.replace('"claim": 2', '"claim": true'), 2) is None
    assert parse_verdicts(ok.replace('"x"', "3"), 2) is None
