"""How a conversation is stored: a turn's answer as the assistant message it reads as
and back, a conversation's settings as a dict and back (never failing), titles, the
search over a user's conversations, the tree of turns (the branch shown), the reads
every change starts with (the owner's row, the tree), and the Markdown export.

A turn's answer is stored as an OpenAI-style assistant message, DocChat's details
under a `docchat` key (the shape earlier releases' JSON files held, so their import
copies it as it is):

    {"role": "assistant", "content": "...",
     "docchat": {"mode": "llm", "kind": "answer", "query": "...", "sources": [...], ...}}

Details an older row lacks (`kind`, `llm_calls`, `completion_tokens`) read as their
defaults.

The turns of a conversation form a tree by their parent ids: a regenerated answer or
an edited question is a new turn with the same parent as the one it replaces. The
branch shown runs from a first question down to the conversation's `leaf_id`, then on
through the newest child at each step. Parent ids that point nowhere (a damaged row)
end the walk up; a cycle ends it too.

Left out: the dataclasses and the transactions around these steps (`conversations.py`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)

from rag.core.errors import ConversationNotFoundError
from rag.core.models import Answer, Chunk, Claim, Hit, Source, claims_line, from_dict
from rag.records.schema import conversations, turns

if TYPE_CHECKING:
    from rag.components.conversations import Turn

log = logging.getLogger(__name__)

TITLE_CHARS: int = conversations.c.title.type.length or 200  # type: ignore[attr-defined]
# A search is at most this long and this many words: each word is one EXISTS over the
# user's turns (three LIKEs a row), so the cost stays in proportion to the user's data.
QUERY_CHARS = 200
QUERY_WORDS = 10
_KINDS = ("answer", "summary")
_VERDICTS = ("supported", "computed", "not_found", "uncited")

Tree = Mapping[int, int | None]  # turn id -> its parent's id (None: a first question)


# -- a turn's answer ------------------------------------------------------------------------------


def answer_message(a: Answer) -> dict[str, Any]:
    """The answer as the assistant message stored in `turns.answer`."""
    return {
        "role": "assistant",
        "content": a.text,
        "docchat": {
            "mode": a.mode,
            "kind": a.kind,
            "query": a.query,
            "sources": [s.to_dict() for s in a.sources],
            "cited": list(a.cited),
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "llm_calls": a.llm_calls,
            "left_out": list(a.left_out),
            "error": a.error,
            "claims": [c.to_dict() for c in a.claims],
            **({"notes": list(a.notes)} if a.notes else {}),  # e.g. re-ranking skipped
        },
    }


def _claims(raw: Any) -> tuple[Claim, ...]:
    """The stored claims that can be read (a damaged one is left out, not the answer)."""
    out = []
    for d in raw if isinstance(raw, list) else []:
        try:
            claim = from_dict(Claim, d)
            if claim.verdict not in _VERDICTS or (claim.span is not None and len(claim.span) != 2):
                raise ValueError(claim.verdict)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        out.append(claim)
    return tuple(out)


def _source(d: dict[str, Any]) -> Source:
    # (`index` and `tokens` are missing from records written before they were saved)
    chunk = from_dict(Chunk, {"index": 0, **d})
    return Source(n=int(d["n"]), hit=Hit(chunk=chunk, score=float(d.get("score", 0.0))))


def message_answer(question: str, m: dict[str, Any]) -> Answer:
    """The `Answer` a stored assistant message holds (ValueError, KeyError, TypeError
    or AttributeError when it is damaged)."""
    meta = m.get("docchat") or {}
    kind = meta.get("kind", "answer")
    return Answer(
        text=str(m.get("content", "")),
        mode=meta.get("mode", "llm"),
        question=question,
        query=str(meta.get("query", "")),
        sources=tuple(_source(s) for s in meta.get("sources", [])),
        cited=tuple(int(n) for n in meta.get("cited", [])),
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        left_out=tuple(int(n) for n in meta.get("left_out", [])),
        error=str(meta.get("error", "")),
        kind=kind if kind in _KINDS else "answer",
        llm_calls=int(meta.get("llm_calls", 0)),
        completion_tokens=int(meta.get("completion_tokens", 0)),
        claims=_claims(meta.get("claims")),
        notes=tuple(str(n) for n in meta.get("notes", [])),
    )


def read_answer(question: str, raw: str | None) -> Answer | None:
    """A stored answer (JSON text), or None when it cannot be read (logged)."""
    try:
        message = json.loads(raw or "")
        if not isinstance(message, dict):
            raise TypeError("not an object")
        return message_answer(question, message)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("a stored conversation turn cannot be read (%s): left out", type(e).__name__)
        return None


# -- a conversation's settings and title --------------------------------------------------------


def _number(v: object, low: float, high: float) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) and low <= v <= high else None


def settings_fields(raw: str | None) -> dict[str, Any]:
    """The valid fields of stored settings (JSON text) as ChatSettings' keyword
    arguments: unknown keys are ignored, a field with a bad value or a row that is
    not JSON is left out (its default applies). Bounds are the chat page's controls'
    widest (top-k 1 to 100, a score -1 to 1, a temperature 0 to 2)."""
    try:
        d = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {}
    ids = d.get("doc_ids")
    if isinstance(ids, list) and len(ids) <= 1000 and all(isinstance(i, str) for i in ids):
        out["doc_ids"] = tuple(ids)
    top_k = d.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool) and 1 <= top_k <= 100:
        out["top_k"] = top_k
    for key, low, high in (("min_score", -1.0, 1.0), ("temperature", 0.0, 2.0)):
        value = _number(d.get(key), low, high)
        if value is not None:
            out[key] = value
    model = d.get("model")
    if isinstance(model, str) and len(model) <= 200:
        out["model"] = model
    return out


def clean_title(text: str) -> str:
    """One line, trimmed, at most the column's length."""
    return " ".join(text.split())[:TITLE_CHARS]


# -- search --------------------------------------------------------------------------------------


def search_words(query: str) -> list[str]:
    """The words a search must find (the query cut to QUERY_CHARS, then QUERY_WORDS)."""
    return query[:QUERY_CHARS].split()[:QUERY_WORDS]


def _contains(column: ColumnElement[Any], word: str) -> ColumnElement[bool]:
    """`word` inside `column`, case folded by the database on both sides (SQLite folds
    ASCII letters only), LIKE's wildcards in the word taken literally."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(func.lower(literal(f"%{escaped}%")), escape="\\")


def matches(word: str, dialect: str) -> ColumnElement[bool]:
    """A conversation row whose title, or one of whose questions or answer texts (the
    assistant message's content, not its sources), contains `word`."""
    text: ColumnElement[Any] = turns.c.answer["content"].as_string()
    if dialect == "sqlite":  # SQLite's JSON functions raise on a row that is not JSON
        text = case((func.json_valid(turns.c.answer) == 1, text), else_=None)
    in_turns = exists(
        select(turns.c.id).where(
            and_(
                turns.c.conversation_id == conversations.c.id,
                or_(_contains(turns.c.question, word), _contains(text, word)),
            )
        )
    )
    return or_(_contains(conversations.c.title, word), in_turns)


# -- the tree of turns ---------------------------------------------------------------------------


def children(tree: Tree) -> dict[int | None, list[int]]:
    """Each parent id's children, oldest (lowest id) first."""
    out: dict[int | None, list[int]] = {}
    for tid in sorted(tree):
        out.setdefault(tree[tid], []).append(tid)
    return out


def newest_below(tree: Tree, tid: int, above: Collection[int] = ()) -> list[int]:
    """`tid`, then its newest child, that one's newest child, ... down to a leaf (never
    back to a turn of `above`, the branch over it)."""
    kids, chain, seen = children(tree), [tid], {tid, *above}
    while kids.get(chain[-1]):
        nxt = kids[chain[-1]][-1]
        if nxt in seen:
            break
        chain.append(nxt)
        seen.add(nxt)
    return chain


def branch(tree: Tree, leaf: int | None) -> list[int]:
    """The shown branch's turn ids, first question first: up from `leaf` to its first
    question, then down through the newest children. A `leaf` not in the tree (none
    yet, or a damaged row): the newest turn's branch."""
    if not tree:
        return []
    if leaf not in tree:
        leaf = max(tree)
    up: list[int] = []
    t: int | None = leaf
    while t is not None and t in tree and t not in up:
        up.append(t)
        t = tree[t]
    up.reverse()
    return up[:-1] + newest_below(tree, up[-1], up)


# -- the records ---------------------------------------------------------------------------------


def missing(cid: object) -> ConversationNotFoundError:
    return ConversationNotFoundError(f"No conversation {str(cid)[:40]!r}.")


def info_query(owner: str) -> Any:
    count = (
        select(func.count(turns.c.id))
        .where(turns.c.conversation_id == conversations.c.id)
        .scalar_subquery()
    )
    # The settings as text: a row the JSON decoder chokes on reads as the defaults.
    return select(
        conversations.c.id, conversations.c.collection, conversations.c.title,
        conversations.c.created, conversations.c.updated,
        cast(conversations.c.settings, Text).label("settings"), count.label("turns"),
    ).where(conversations.c.owner_id == owner)  # fmt: skip


def own_row(conn: Connection, owner: str, cid: str) -> Row[Any]:
    """The owner's conversation row `cid` (ConversationNotFoundError otherwise)."""
    if not isinstance(cid, str) or not cid:
        raise missing(cid)
    row = conn.execute(
        select(conversations.c.id, conversations.c.collection, conversations.c.title,
               conversations.c.leaf_id, cast(conversations.c.settings, Text).label("settings"))
        .where(conversations.c.id == cid, conversations.c.owner_id == owner)
    ).first()  # fmt: skip
    if row is None:
        raise missing(cid)
    return row


def turn_tree(conn: Connection, cid: str) -> dict[int, int | None]:
    rows = conn.execute(select(turns.c.id, turns.c.parent_id).where(turns.c.conversation_id == cid))
    return {int(r.id): None if r.parent_id is None else int(r.parent_id) for r in rows}


def turn_in(tree: Tree, turn_id: object) -> int:
    if isinstance(turn_id, bool) or not isinstance(turn_id, int) or turn_id not in tree:
        raise ConversationNotFoundError(f"No turn {str(turn_id)[:20]} in that conversation.")
    return turn_id


def drop(conn: Connection, *where: Any) -> None:
    """Delete the conversations `where` selects, and their turns."""
    ids = select(conversations.c.id).where(*where)
    conn.execute(delete(turns).where(turns.c.conversation_id.in_(ids)))
    conn.execute(delete(conversations).where(*where))


# -- for people ----------------------------------------------------------------------------------


def markdown(title: str, collection: str, shown: Sequence[Turn]) -> str:
    """A conversation for people: each question, answer, and its sources in full."""
    if title:
        lines = [f"# {_one_line(title)}", "", f"DocChat conversation: {collection}"]
    else:
        lines = [f"# DocChat conversation: {collection}"]
    lines.append("")
    for i, t in enumerate(shown, start=1):
        a = t.answer
        lines += [f"## {i}. {_one_line(t.question)}", ""]
        if a.kind == "summary":
            lines += ["*Summary of the whole document.*", ""]
        lines += [a.text.strip() or "(no answer text)", ""]
        if a.claims:
            lines += [f"*Checked: {claims_line(a.claims)}.*", ""]
            lines += [f"- Not backed: \"{_one_line(c.sentence)}\" ({c.reason or c.verdict})"
                      for c in a.claims if c.verdict in ("not_found", "uncited")]  # fmt: skip
            lines.append("")
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
