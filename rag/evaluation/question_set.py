"""A user's own evaluation question set: a CSV or JSONL file -> `EvalQuestion`s.

Each row has a question and any of: the expected answer text (verbatim from the
document), the expected source (file name or doc id), a chunk id. The retrieval set
that fine-tuning exports (`eval_questions_jsonl`) reads as it is. `evaluate`
(runs.py) then asks them of a collection.

Left out: spreadsheets (.xlsx), answers given as character spans (only datasets
such as COVID-QA have those), and more than `limit` questions in one run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from rag.core.errors import DatasetError
from rag.evaluation.measures import EvalQuestion

_Q_KEYS = ("question", "query", "q")
_A_KEYS = ("answer", "expected_answer", "answer_text")
_S_KEYS = ("source", "expected_source", "file", "document", "doc", "doc_id")


def _pick(row: dict[str, object], keys: Sequence[str]) -> str:
    lower = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    for k in keys:
        v = lower.get(k)
        if v is not None and str(v).strip():
            return str(v).strip()
    return ""


def read_question_set(name: str, data: bytes, *, limit: int = 5000) -> list[EvalQuestion]:
    """Questions from a CSV (header row) or JSONL file.

    Columns/keys: `question` (required) and at least one of `answer` (text found
    verbatim in a document), `source` (file name or doc id; also `file`, `doc_id`),
    `chunk_id`. The retrieval set exported by fine-tuning data generation reads as is.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{name}: not UTF-8 text.") from None
    rows: list[dict[str, object]] = []
    if name.lower().endswith((".jsonl", ".json", ".ndjson")):
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{name}: invalid JSON ({e.msg}, line {e.lineno}).") from None
        else:
            items = []
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{name}: line {n} is not valid JSON ({e.msg}).") from None
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise DatasetError(f"{name}: item {n} is not an object with a question.")
            rows.append(item)
    elif name.lower().endswith((".csv", ".tsv")):
        dialect = "excel-tab" if name.lower().endswith(".tsv") else "excel"
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if not reader.fieldnames or not any(
            (f or "").strip().lower() in _Q_KEYS for f in reader.fieldnames
        ):
            raise DatasetError(
                f"{name}: the first row must name the columns, one of them 'question'."
            )
        rows = [dict(r) for r in reader]
    else:
        raise DatasetError(f"{name}: use a .csv or .jsonl file.")
    out = []
    for n, row in enumerate(rows, start=1):
        q = EvalQuestion(
            question=_pick(row, _Q_KEYS),
            answer=_pick(row, _A_KEYS),
            source=_pick(row, _S_KEYS),
            chunk_id=_pick(row, ("chunk_id",)),
        )
        if not q.question:
            raise DatasetError(f"{name}: row {n} has no question.")
        if not (q.has_answer or q.has_source):
            raise DatasetError(
                f"{name}: row {n} has neither an expected answer nor an expected source."
            )
        out.append(q)
    if not out:
        raise DatasetError(f"{name}: no questions found.")
    if len(out) > limit:
        raise DatasetError(f"{name}: {len(out)} questions; at most {limit} per run.")
    return out
