"""Fine-tuning sets: the Q&A pair, validation, and the training set in JSONL.

- `QAPair` is one example with the chunk its answer comes from; `to_example` makes
  it a line of the OpenAI chat fine-tuning format (`{"messages": [system, user,
  assistant]}`), with `default_system_prompt` as the system message.
- `validate_pairs` / `validate_examples` check a set against what that format
  requires (roles, empty messages, estimated tokens against the base model's limit,
  duplicates) and return a `ValidationReport`; `drop_invalid` keeps the good rows.
- `build_training_set` turns valid pairs into train and validation JSONL text;
  `TrainingSet.write` saves it. `pairs_jsonl` writes pairs with their sources (for
  review or re-import), `eval_questions_jsonl` the grounded ones as a retrieval
  evaluation question set (question plus the chunk that holds its answer).

Left out: where pairs come from (pairs.py writes them, qa_file.py reads a user's
file); multi-turn and preference (DPO) examples; exact tokenizers (token counts are
the same 4-characters-a-token estimate as prompts.py, which is conservative for
English); prices in money (token counts only: prices change); keeping the pairs of
one chunk in the same split.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, SupportsInt

from rag.answering.prompts import estimate_tokens
from rag.core.errors import DatasetError
from rag.core.files import write_atomic
from rag.core.models import Chunk
from rag.core.settings import DEFAULT_CHAT_MODEL

PairKind = Literal["grounded", "decline", "imported"]
_KEPT_KINDS: dict[str, PairKind] = {"grounded": "grounded", "decline": "decline"}
ROLES = ("system", "user", "assistant")
MIN_EXAMPLES = 10  # OpenAI refuses to train on fewer

# Longest training example (in tokens) each base model accepts; prefixes match
# dated versions ("gpt-4o-mini-2024-07-18"). Unknown models get the smallest.
MODEL_TOKEN_LIMITS: dict[str, int] = {
    "gpt-4.1-nano": 65_536,
    "gpt-4.1-mini": 65_536,
    "gpt-4.1": 65_536,
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-3.5-turbo": 16_385,
}
DEFAULT_TOKEN_LIMIT = 16_385


def default_system_prompt(field: str) -> str:
    """The system message of every training example (and of the tuned model later)."""
    return f"You are an assistant for {field}. Answer questions about it accurately and concisely."


# ---- values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QAPair:
    """One training example, with the chunk its answer comes from (if any)."""

    question: str
    answer: str
    chunk_id: str = ""  # "" for decline pairs and imported pairs without a source
    doc_id: str = ""
    file: str = ""
    page: int | None = None
    kind: PairKind = "grounded"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_chunk(cls, chunk: Chunk, question: str, answer: str) -> QAPair:
        return cls(question, answer, chunk.id, chunk.doc_id, chunk.file, chunk.page)

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> QAPair:
        """A pair from a loose row: a line of a user's file, a row of the review table.

        Missing text is "", a page that is not a number is None, and a kind other
        than grounded or decline is "imported" (the row's source is not known).
        """

        def text(key: str) -> str:
            value = row.get(key)
            return "" if value is None else str(value)

        kind = row.get("kind")
        return cls(
            question=text("question").strip(),
            answer=text("answer").strip(),
            chunk_id=text("chunk_id"),
            doc_id=text("doc_id"),
            file=text("file"),
            page=_page(row.get("page")),
            kind=_KEPT_KINDS.get(kind, "imported") if isinstance(kind, str) else "imported",
        )


def _page(value: object) -> int | None:
    # A CSV gives text, JSON a number, the review table a number or a missing value.
    try:
        return int(value) if isinstance(value, SupportsInt | str) else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ValidationIssue:
    """One problem of a training set; `row` is 0-based, -1 for the set as a whole."""

    row: int
    severity: Literal["error", "warning"]
    code: str  # format, role, empty, no_answer, too_long, duplicate, few
    message: str


@dataclass(frozen=True)
class ValidationReport:
    examples: int
    issues: tuple[ValidationIssue, ...]
    token_limit: int
    longest: int  # estimated tokens of the longest example
    total_tokens: int

    @property
    def errors(self) -> tuple[ValidationIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[ValidationIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_rows(self) -> frozenset[int]:
        return frozenset(i.row for i in self.errors if i.row >= 0)

    def summary(self) -> str:
        return (
            f"{self.examples} example(s), {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s); longest ~{self.longest:,} of "
            f"{self.token_limit:,} tokens, ~{self.total_tokens:,} tokens in all"
        )


@dataclass(frozen=True)
class TrainingSet:
    """Validated examples in the OpenAI chat fine-tuning format, split in two."""

    train_jsonl: str
    validation_jsonl: str
    train_examples: int
    validation_examples: int
    report: ValidationReport

    def write(self, out_dir: Path) -> list[Path]:
        """train.jsonl (and validation.jsonl when not empty) in `out_dir`."""
        paths = [write_atomic(out_dir / "train.jsonl", self.train_jsonl)]
        if self.validation_examples:
            paths.append(write_atomic(out_dir / "validation.jsonl", self.validation_jsonl))
        return paths


# ---- validation --------------------------------------------------------------------------


def token_limit_for(model: str) -> int:
    for prefix in sorted(MODEL_TOKEN_LIMITS, key=len, reverse=True):
        if model.startswith(prefix) or model.startswith(f"ft:{prefix}"):
            return MODEL_TOKEN_LIMITS[prefix]
    return DEFAULT_TOKEN_LIMIT


def question_messages(question: str, system_prompt: str = "") -> list[dict[str, str]]:
    """A question as a tuned model sees it, in training and when asked alone."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": question}]


def to_example(pair: QAPair, system_prompt: str = "") -> dict[str, list[dict[str, str]]]:
    """One line of the OpenAI chat fine-tuning format."""
    answer = {"role": "assistant", "content": pair.answer}
    return {"messages": [*question_messages(pair.question, system_prompt), answer]}


def example_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimated tokens of one example: content plus a few per message, as chat formats add."""
    return 3 + sum(4 + estimate_tokens(str(m.get("content") or "")) for m in messages)


def validate_pairs(
    pairs: Sequence[QAPair],
    *,
    system_prompt: str = "",
    model: str = DEFAULT_CHAT_MODEL,
    token_limit: int | None = None,
) -> ValidationReport:
    """`validate_examples` of the pairs as they would be exported (rows match)."""
    examples = [to_example(p, system_prompt) for p in pairs]
    return validate_examples(examples, model=model, token_limit=token_limit)


def validate_examples(
    examples: Sequence[object], *, model: str = DEFAULT_CHAT_MODEL, token_limit: int | None = None
) -> ValidationReport:
    """Check chat-format examples; errors block export, warnings do not."""
    limit = token_limit or token_limit_for(model)
    issues: list[ValidationIssue] = []
    seen: dict[str, int] = {}
    longest = total = 0
    for row, example in enumerate(examples):
        messages = example.get("messages") if isinstance(example, Mapping) else None
        if not isinstance(messages, list) or not messages:
            issues.append(ValidationIssue(row, "error", "format", "no 'messages' list"))
            continue
        problems = _message_problems(messages)
        issues += [ValidationIssue(row, "error", code, text) for code, text in problems]
        if problems:
            continue
        tokens = example_tokens(messages)
        longest, total = max(longest, tokens), total + tokens
        if tokens > limit:
            message = f"~{tokens:,} tokens, over the {limit:,} a {model} example may have"
            issues.append(ValidationIssue(row, "error", "too_long", message))
        key = " ".join(
            " ".join(m["content"].lower().split()) for m in messages if m["role"] == "user"
        )
        if key in seen:
            message = f"same question as row {seen[key] + 1}"
            issues.append(ValidationIssue(row, "error", "duplicate", message))
        else:
            seen[key] = row
    if len(examples) < MIN_EXAMPLES:
        message = f"only {len(examples)} example(s); OpenAI needs at least {MIN_EXAMPLES}"
        issues.append(ValidationIssue(-1, "warning", "few", message))
    return ValidationReport(len(examples), tuple(issues), limit, longest, total)


def _message_problems(messages: list[Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for i, m in enumerate(messages, start=1):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, Mapping) else None
            problems.append(("role", f"message {i} has role {role!r}, not one of {ROLES}"))
        elif not isinstance(m.get("content"), str) or not m["content"].strip():
            problems.append(("empty", f"message {i} ({m['role']}) is empty"))
    if problems:
        return problems
    roles = [m["role"] for m in messages]
    if "user" not in roles or roles[-1] != "assistant":
        problems.append(("no_answer", "needs a user message followed by an assistant answer"))
    return problems


def drop_invalid(pairs: Sequence[QAPair], report: ValidationReport) -> list[QAPair]:
    """The pairs without errors (for runs no one reviews, such as the CLI)."""
    bad = report.bad_rows
    return [p for i, p in enumerate(pairs) if i not in bad]


# ---- export ----------------------------------------------------------------------------


def build_training_set(
    pairs: Sequence[QAPair],
    *,
    system_prompt: str = "",
    model: str = DEFAULT_CHAT_MODEL,
    validation_fraction: float = 0.2,
    seed: int = 0,
    token_limit: int | None = None,
) -> TrainingSet:
    """Validate, shuffle (seeded) and split; raises `DatasetError` if any row has an error."""
    if not 0 <= validation_fraction < 1:
        raise DatasetError("The validation share must be at least 0 and below 1.")
    report = validate_pairs(
        pairs, system_prompt=system_prompt, model=model, token_limit=token_limit
    )
    if not pairs:
        raise DatasetError("There are no pairs to export.")
    if not report.ok:
        first = report.errors[0]
        raise DatasetError(
            f"{len(report.errors)} problem(s) must be fixed before export; "
            f"first: row {first.row + 1}: {first.message}."
        )
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = round(len(pairs) * validation_fraction)
    if validation_fraction > 0 and len(pairs) >= 2:
        n_val = min(max(n_val, 1), len(pairs) - 1)
    val, train = order[:n_val], order[n_val:]

    def jsonl(rows: list[int]) -> str:
        return "".join(
            json.dumps(to_example(pairs[i], system_prompt), ensure_ascii=False) + "\n"
            for i in sorted(rows)
        )

    return TrainingSet(jsonl(train), jsonl(val), len(train), len(val), report)


def pairs_jsonl(pairs: Iterable[QAPair]) -> str:
    """Pairs with their sources, one JSON object a line (`import_pairs` reads it back)."""
    return "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs)


def eval_questions_jsonl(pairs: Iterable[QAPair]) -> str:
    """Grounded pairs as a retrieval evaluation set: does search find each source chunk?

    Fields: question, answer, doc_id, file, page, chunk_id.
    """
    fields = ("question", "answer", "doc_id", "file", "page", "chunk_id")
    return "".join(
        json.dumps({f: getattr(p, f) for f in fields}, ensure_ascii=False) + "\n"
        for p in pairs
        if p.chunk_id
    )
