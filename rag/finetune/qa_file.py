"""A user's own Q&A file as pairs: CSV with question/answer columns, or JSONL.

`import_pairs` reads CSV (a header row naming the question and answer columns),
JSONL or a JSON list of {"question", "answer"} objects, or chat-format
{"messages": [...]} examples; it also reads back what `pairs_jsonl` writes, sources
included. Empty questions or answers are kept, for validation to flag in review.

Left out: spreadsheets (.xlsx), multi-turn conversations (the last user and
assistant messages are taken), and guessing columns by their content.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from rag.core.errors import DatasetError
from rag.finetune.dataset import QAPair

_QUESTION_KEYS = ("question", "q", "prompt", "input", "instruction")
_ANSWER_KEYS = ("answer", "a", "completion", "response", "output")


def import_pairs(name: str, data: bytes) -> list[QAPair]:
    """A user's Q&A file: CSV with question/answer columns, or JSONL / a JSON list of
    {"question", "answer"} objects or chat-format {"messages": [...]} examples.

    Empty questions or answers are kept (validation flags them, so the user sees
    them in review); a file that cannot be read at all raises `DatasetError`.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{name} is not UTF-8 text.") from None
    if not text.strip():
        raise DatasetError(f"{name} is empty.")
    rows = _csv_rows(name, text) if name.lower().endswith(".csv") else _json_rows(name, text)
    pairs = [_pair_from_row(name, where, row) for where, row in rows]
    if not pairs:
        raise DatasetError(f"{name} has no question/answer pairs.")
    return pairs


def _csv_rows(name: str, text: str) -> list[tuple[str, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower(): c for c in reader.fieldnames or [] if c}
    q = next((columns[k] for k in _QUESTION_KEYS if k in columns), None)
    a = next((columns[k] for k in _ANSWER_KEYS if k in columns), None)
    if q is None or a is None:
        found = ", ".join(columns.values()) or "none"
        raise DatasetError(f"{name} needs 'question' and 'answer' columns (found: {found}).")
    rows: list[tuple[str, Mapping[str, Any]]] = []
    try:
        for n, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "") for k, v in raw.items() if isinstance(k, str)}
            row["question"], row["answer"] = raw.get(q) or "", raw.get(a) or ""
            if any(str(v).strip() for v in row.values()):
                rows.append((f"line {n}", row))
    except csv.Error as e:
        raise DatasetError(f"{name} is not valid CSV: {e}") from None
    return rows


def _json_rows(name: str, text: str) -> list[tuple[str, Mapping[str, Any]]]:
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise DatasetError(f"{name} is not valid JSON: {e}") from None
        return [(f"item {i}", item) for i, item in enumerate(items, start=1)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {n}", json.loads(line)))
        except ValueError:
            raise DatasetError(f"{name}, line {n}: not valid JSON.") from None
    return rows


def _pair_from_row(name: str, where: str, row: object) -> QAPair:
    if not isinstance(row, Mapping):
        raise DatasetError(f"{name}, {where}: expected an object with a question and an answer.")
    if isinstance(row.get("messages"), list):
        by_role = {
            m.get("role"): str(m.get("content") or "")
            for m in row["messages"]
            if isinstance(m, Mapping)
        }  # the last user and assistant messages win
        question, answer = by_role.get("user"), by_role.get("assistant")
    else:
        lowered = {str(k).lower(): v for k, v in row.items()}
        question = next((lowered[k] for k in _QUESTION_KEYS if k in lowered), None)
        answer = next((lowered[k] for k in _ANSWER_KEYS if k in lowered), None)
        row = lowered
    if question is None or answer is None:
        raise DatasetError(f"{name}, {where}: no question and answer found.")
    return QAPair.from_row({**row, "question": question, "answer": answer})
