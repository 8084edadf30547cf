"""`python -m rag eval claims --data FILE.jsonl`: a team's own labelled claims scored
by the claim check, the figures printed and written as JSON (the fake embedder: the
datasets' figures with the real model are benchmarks/results/claims.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli.eval import main
from rag.core.errors import DatasetError
from rag.datasets.claim_edits import change_digit, change_scale, flip_sign, paraphrase
from tests.fixtures.fakes import register_fake_embedder

TABLE = "(In millions)\nTotal net sales $ 81,797 $ 82,959 (1)%"
PETS = ["Dogs bark at strangers.", "Cats eat fish and mice every day."]
ROWS = [
    {"claim": "Total net sales were $81.8 billion [1].", "sources": [TABLE],
     "label": "supported", "kind": "paraphrase"},
    {"claim": "Total net sales were $81,997 million [1].", "sources": [TABLE],
     "label": "not_found", "kind": "figure_digit"},
    {"claim": "Total net sales were $81,797 thousand [1].", "sources": [TABLE],
     "label": "not_found", "kind": "figure_scale"},
    {"claim": "Cats eat fish and mice [2].", "sources": PETS, "label": "supported",
     "kind": "verbatim"},
    {"claim": "Cats eat fish and mice [1].", "sources": PETS, "label": "not_found",
     "kind": "citation"},
]  # fmt: skip


def test_eval_claims_scores_a_labelled_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    register_fake_embedder(monkeypatch)
    data = tmp_path / "claims.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n", encoding="utf-8")
    out = tmp_path / "out" / "claims.json"
    assert main(["claims", "--data", str(data), "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    assert d["benchmark"] == "claims" and d["claims"] == 5
    assert d["caught"] == {"citation": 1.0, "figure": 1.0, "figure_digit": 1.0,
                           "figure_scale": 1.0}  # fmt: skip
    assert d["false_alarms"] == 0.0 and d["ms_per_sentence_p95"] >= 0
    assert d["command"].endswith(f"eval claims --data {data} --json {out} --quiet")
    assert d["date"] and set(d["datasets"]) == {"claims.jsonl"}
    printed = capsys.readouterr().out
    assert "figure_digit" in printed and "false alarms on supported claims: 0.0" in printed


def test_eval_claims_refuses_a_file_that_is_not_labelled_claims(tmp_path: Path) -> None:
    data = tmp_path / "claims.jsonl"
    data.write_text('{"claim": "x", "sources": ["y"], "label": "true"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1"):
        main(["claims", "--data", str(data), "--quiet"])


def test_the_rules_that_make_the_benchmark_claims() -> None:
    import random

    rng = random.Random(0)
    s = "For the quarter ended July 1, 2023, net sales increased by 5 % to $81,797 million."
    assert paraphrase(s) == (
        "Net sales increased by approximately 5 % to $81.8 billion for the quarter ended "
        "July 1, 2023."
    )
    assert flip_sign(s, "") == s.replace("increased", "decreased")
    assert change_scale(s, "", rng) == s.replace("million", "billion")
    changed = change_digit(s, "81,797 5", rng)
    assert changed is not None and changed != s and len(changed) == len(s)
