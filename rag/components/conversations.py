"""Chat history: one conversation per collection, kept on disk, exported as Markdown.

A `Conversation` is a list of `Turn`s (a question and its `Answer`, sources
included). `history()` gives it back as plain OpenAI-style messages for the next
question. `Conversations` keeps one JSON file per collection under
`<data_dir>/conversations/`, named by a hash of the collection name (a name is
never a path), written atomically. The file holds plain messages too; each
assistant message carries its answer's sources and details under a `docchat` key:

    {"format": "docchat-conversation/1", "collection": "default",
     "messages": [{"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...",
                   "docchat": {"mode": "llm", "query": "...", "sources": [...], ...}}]}

Left out: several conversations per collection, and merging concurrent writers
(two browser tabs on one collection: the last answer written wins the file, each
tab keeps its own turns until it reloads).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.core.files import write_atomic
from rag.core.models import Answer, Chunk, Hit, Source, from_dict
from rag.core.text import Message

FORMAT = "docchat-conversation/1"


@dataclass(frozen=True)
class Turn:
    """One question and what came back (possibly partial: stopped, or failed)."""

    question: str
    answer: Answer
    stopped: bool = False  # the user stopped the answer before its end
    at: float = 0.0  # unix time


@dataclass(frozen=True)
class Conversation:
    collection: str
    turns: tuple[Turn, ...] = ()

    def add(self, turn: Turn) -> Conversation:
        return replace(self, turns=(*self.turns, turn))

    def history(self) -> list[Message]:
        """Plain OpenAI-style messages, oldest first; turns without answer text are left
        out (a failed answer taught the model nothing)."""
        messages: list[Message] = []
        for t in self.turns:
            if t.answer.text.strip():
                messages.append({"role": "user", "content": t.question})
                messages.append({"role": "assistant", "content": t.answer.text})
        return messages

    def to_markdown(self) -> str:
        """The conversation for people: each question, answer, and its sources in full."""
        lines = [f"# DocChat conversation: {self.collection}", ""]
        for i, t in enumerate(self.turns, start=1):
            a = t.answer
            lines += [f"## {i}. {_one_line(t.question)}", ""]
            lines += [a.text.strip() or "(no answer text)", ""]
            if t.stopped:
                lines += ["*Stopped before the end.*", ""]
            if a.error:
                lines += [f"*The answer failed: {a.error}*", ""]
            if a.query:
                lines += [f"Searched for: `{_one_line(a.query)}`", ""]
            if a.sources:
                lines += ["### Sources", ""]
                for s in a.sources:
                    lines += [f"[{s.n}] {source_label(s)}", ""]
                    lines += ["> " + line for line in s.chunk.text.strip().splitlines()]
                    lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def source_label(s: Source) -> str:
    """'report.pdf, page 3, section Intro, score 0.71' (parts that exist only)."""
    c = s.chunk
    parts = [c.file, c.location, c.section and f"section {c.section}", f"score {s.hit.score:.2f}"]
    return ", ".join(p for p in parts if p)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def failed_answer(question: str, error: str) -> Answer:
    """An `Answer` for a question that failed before any source was found."""
    return Answer(
        text="", mode="no-answer", question=question, query="", sources=(), cited=(), error=error
    )


# -- the file format ------------------------------------------------------------------------


def _source_from_dict(d: dict[str, Any]) -> Source:
    # (`index` and `tokens` are missing from files written before they were saved)
    chunk = from_dict(Chunk, {"index": 0, **d})
    return Source(n=int(d["n"]), hit=Hit(chunk=chunk, score=float(d.get("score", 0.0))))


def _messages(conv: Conversation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in conv.turns:
        a = t.answer
        out.append({"role": "user", "content": t.question})
        out.append(
            {
                "role": "assistant",
                "content": a.text,
                "docchat": {
                    "mode": a.mode,
                    "query": a.query,
                    "sources": [s.to_dict() for s in a.sources],
                    "cited": list(a.cited),
                    "prompt_tokens": a.prompt_tokens,
                    "left_out": list(a.left_out),
                    "error": a.error,
                    "stopped": t.stopped,
                    "at": t.at,
                },
            }
        )
    return out


def _turns(messages: Sequence[dict[str, Any]]) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    question: str | None = None
    for m in messages:
        if m.get("role") == "user":
            question = str(m.get("content", ""))
        elif m.get("role") == "assistant" and question is not None:
            meta = m.get("docchat") or {}
            answer = Answer(
                text=str(m.get("content", "")),
                mode=meta.get("mode", "llm"),
                question=question,
                query=str(meta.get("query", "")),
                sources=tuple(_source_from_dict(s) for s in meta.get("sources", [])),
                cited=tuple(int(n) for n in meta.get("cited", [])),
                prompt_tokens=int(meta.get("prompt_tokens", 0)),
                left_out=tuple(int(n) for n in meta.get("left_out", [])),
                error=str(meta.get("error", "")),
            )
            stopped = bool(meta.get("stopped", False))
            turns.append(Turn(question, answer, stopped=stopped, at=float(meta.get("at", 0.0))))
            question = None
    return tuple(turns)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path, collection: str) -> Conversation:
    """The conversation in a file, or an empty one (also when the file is unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        turns = _turns(raw["messages"])
    except (OSError, ValueError, KeyError, TypeError):
        # A damaged history must not lock a user out of chatting; start afresh.
        return Conversation(collection)
    return Conversation(collection, turns)


class Conversations:
    """One conversation per collection and user, as JSON files under
    `<data_dir>/conversations/` (single-user mode's at the top, as before accounts;
    each signed-in user's in a folder of their own). `for_user` gives a user's view."""

    def __init__(
        self, data_dir: Path, owner: str = "", lock: threading.Lock | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / "conversations"
        self.owner = owner  # "" is single-user mode's one user
        self._lock = lock or threading.Lock()  # shared by every user's view

    def for_user(self, owner: str) -> Conversations:
        """`owner`'s conversations (the same files and lock as this one's)."""
        return Conversations(self.data_dir, owner, self._lock)

    def _folder(self, owner: str) -> Path:
        return self.dir / "users" / _digest(owner)[:16] if owner else self.dir

    def _path(self, collection: str) -> Path:
        return self._folder(self.owner) / (_digest(collection)[:32] + ".json")

    def _owners(self) -> list[Path]:
        """Every folder of conversations: single-user mode's and each user's."""
        users = self.dir / "users"
        return [self.dir, *(sorted(users.iterdir()) if users.is_dir() else [])]

    def load(self, collection: str) -> Conversation:
        """The saved conversation, or an empty one (also when the file is unreadable)."""
        return _read(self._path(collection), collection)

    def save(self, conv: Conversation) -> None:
        self._write(self._path(conv.collection), conv)

    def _write(self, path: Path, conv: Conversation) -> None:
        data = {"format": FORMAT, "collection": conv.collection, "messages": _messages(conv)}
        try:
            write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))
        except OSError as e:
            raise RagError(f"Cannot save the conversation under {self.dir}: {e}") from None

    def append(
        self, collection: str, question: str, answer: Answer, *, stopped: bool = False
    ) -> Conversation:
        """Add a turn to the saved conversation and return the result."""
        with self._lock:
            conv = self.load(collection).add(Turn(question, answer, stopped, time.time()))
            self.save(conv)
            return conv

    def clear(self, collection: str) -> None:
        with self._lock:
            self._path(collection).unlink(missing_ok=True)

    def delete(self, collection: str) -> None:
        """Forget a deleted collection's conversations (every user's)."""
        name = _digest(collection)[:32] + ".json"
        with self._lock:
            for folder in self._owners():
                (folder / name).unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> None:
        """Follow a collection rename, for every user (an existing conversation under
        `new` is replaced)."""
        old_name, new_name = (_digest(c)[:32] + ".json" for c in (old, new))
        with self._lock:
            for folder in self._owners():
                path = folder / old_name
                if path.is_file():
                    conv = _read(path, old)
                    if conv.turns:
                        self._write(folder / new_name, Conversation(new, conv.turns))
                    path.unlink(missing_ok=True)
