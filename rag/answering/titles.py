"""A conversation's title, from its first question.

With an LLM, one short call names the conversation (a few words, like the chat apps
people know); without one, or when that call fails, the question itself, on one line
and cut at a word. Either way the title is plain text: citations, Markdown marks and
quotes the model adds are taken out, and the length is capped.

Left out: renaming a conversation as it drifts to other topics (the user can rename).
"""

from __future__ import annotations

import re

from rag.components.generation import LLM
from rag.core.errors import RagError
from rag.core.text import CITATION

TITLE_CHARS = 80  # what the sidebar shows on one or two lines
# A title is a handful of words; 24 tokens leave room for one in any language.
TITLE_MAX_TOKENS = 24

_MARKS = re.compile(r"[*_`#>\"“”«»]+")


def plain_title(text: str) -> str:
    """`text` as a title: one line, no citations or Markdown marks, at most
    `TITLE_CHARS` characters (cut at a word, with an ellipsis)."""
    words = _MARKS.sub("", CITATION.sub("", text)).split()
    title = " ".join(words).strip(" .:;-")
    if len(title) <= TITLE_CHARS:
        return title
    cut = title[: TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "\u2026"


def conversation_title(llm: LLM | None, question: str, model: str | None = None) -> str:
    """A title for a conversation that starts with `question`."""
    fallback = plain_title(question)
    if llm is None:
        return fallback
    messages = [
        {
            "role": "system",
            "content": "Name the conversation that starts with the user's question in 3 to 6 "
            "words, in the question's language. Reply with the title only: no quotes, no "
            "punctuation at the end.",
        },
        {"role": "user", "content": question[:2000]},
    ]
    try:
        reply = llm.complete(messages, model=model, temperature=0.0,
                             max_tokens=TITLE_MAX_TOKENS).text  # fmt: skip
    except RagError:
        return fallback  # the answer matters, its title does not
    first = next((line for line in reply.splitlines() if line.strip()), "")
    return plain_title(first) or fallback
