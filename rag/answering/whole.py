"""Whether a question is about a whole document: a summary, or a list of every X in it.

Top-k retrieval answers "What was the revenue in Q3?" from five chunks; it cannot
answer "Summarize it" or "List every risk it names", which need the whole document
(summary.py reads it). `whole_document_request` recognises those from the question's
words alone, conservatively: a summary word (summary, summarize, overview, tl;dr, key
points, "what is this document about") counts only when the question is that request
and nothing else ("Summarize.", "Give me an overview, please") or names the document
as its object ("Summarize this report", "the key points of the paper", "Summarize
tracemonkey.pdf"). "Summarize the risk factors to Apple's business" is about a topic,
not the document, and stays a normal question. A list needs "every"/"all"/"each"
("List every risk it names", "Name all the companies the document mentions", "every
date the report gives").

Measured on the 1,380 COVID-QA and 195 SEC 10-Q questions (docs/summaries.md): one
triggers, "What is the summary of this report?", which does ask for the whole document.

Left out: languages other than English, and requests that need the document split in
ways other than the two kinds (compare sections, a timeline).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

WholeKind = Literal["summary", "list"]


@dataclass(frozen=True)
class WholeRequest:
    """A question about a whole document: its kind, and for a list what to list."""

    kind: WholeKind
    topic: str = ""  # "risks" for "list every risk it names"; "" for a summary


# What a question calls the document: "it", "this report", "the whole paper", a file name.
_DOC_NOUN = (
    r"(?:document|doc|report|paper|file|pdf|article|filing|text|book|thesis|study|"
    r"presentation|manual|contract|chapter|note|notes|memo|letter|transcript|essay|"
    r"whitepaper|white paper|statement|10-q|10-k|guide|page|pages|slides|deck)"
)
_FILE_NAME = r"[\w.()-]+\.(?:pdf|docx?|md|markdown|txt|html?|rst|csv|json|py|pptx?)"
_DOC = (
    rf"(?:it|this|that|(?:the|this|that|my|our|your)\s+(?:(?:whole|entire|full|attached|"
    rf"uploaded|above|following|selected)\s+)?{_DOC_NOUN}|{_FILE_NAME}|\"[^\"]+\"|'[^']+')"
)
# Words around a request that change nothing of what it asks.
_POLITE = (
    r"(?:please|pls|kindly|can you|could you|would you|will you|can i (?:get|have)|"
    r"could i (?:get|have)|i (?:would like|'d like|want|need)|give me|provide|write|"
    r"make|create|produce|show me|just|quickly|briefly|now|for me|thanks|thank you)"
)
_LEAD = rf"^(?:{_POLITE}[\s,]*)*"
_TAIL = rf"(?:[\s,]*(?:{_POLITE}|(?:in|with)\s+(?:a few|\d+|some|short|brief)\s+\w+(?:\s+\w+)?))*"
_END = r"[\s.!?:;)]*$"
_A = r"(?:an?\s+|the\s+|some\s+|a\s+(?:short|brief|quick|detailed|full)\s+)?"
_ADJ = r"(?:(?:short|brief|quick|detailed|full|complete|high-level|executive|general)\s+)?"
_SUMMARY_NOUN = r"(?:summary|summarization|summarisation|overview|synopsis|recap|gist|tl;?dr)"
_SUMMARY_VERB = r"(?:summari[sz]e|recap|outline|sum\s+up|give\s+an\s+overview\s+of)"
_POINTS = (
    r"(?:key|main|major|important|central|core)\s+(?:points?|takeaways?|ideas?|"
    r"messages?|findings|arguments?|themes?|topics?)|highlights|takeaways"
)
_SUMMARY_PATTERNS = [
    # "Summarize.", "Summarize this report", "Please summarise it in 5 bullets"
    rf"{_LEAD}{_SUMMARY_VERB}(?:\s+{_DOC}(?:\s+for me)?)?{_TAIL}{_END}",
    # "A summary, please", "TL;DR", "Give me a short overview of the paper"
    rf"{_LEAD}{_A}{_ADJ}{_SUMMARY_NOUN}(?:\s+(?:of|for)\s+{_DOC})?{_TAIL}{_END}",
    # "What is the summary of this report?", "What's the gist of it?"
    rf"^(?:what(?:'s| is| are)|whats)\s+{_A}{_ADJ}(?:{_SUMMARY_NOUN}|{_POINTS})"
    rf"(?:\s+(?:of|in|from)\s+{_DOC}){_END}",
    # "Key points?", "The main takeaways of the document"
    rf"{_LEAD}{_A}(?:{_POINTS})(?:\s+(?:of|in|from)\s+{_DOC})?{_TAIL}{_END}",
    # "What is this document about?", "What's it about?", "What is the paper about?"
    rf"^(?:what(?:'s| is)|whats)\s+(?:it|(?:this|that|the)(?:\s+(?:whole\s+)?{_DOC_NOUN})?|"
    rf"{_FILE_NAME})\s+(?:all\s+)?about{_END}",
    rf"^(?:what|which topics?)\s+(?:does|do)\s+{_DOC}\s+(?:cover|discuss|talk about|"
    rf"say overall){_END}",
    # "Tell me what this document is about", "Explain what the paper is about"
    rf"{_LEAD}(?:tell me|explain|describe)\s+what\s+{_DOC}\s+is\s+(?:all\s+)?about{_END}",
]
_SUMMARY = [re.compile(p, re.IGNORECASE) for p in _SUMMARY_PATTERNS]

_EVERY = r"(?:every|all(?:\s+of)?(?:\s+the)?|each(?:\s+of\s+the)?|all\s+the)"
# Where the listed noun phrase ends: nothing, "... in the document", "... it names".
_MENTIONS = r"(?:mentions?|names?|lists?|cites?|gives?|describes?|discusses?|contains?)"
_TOPIC_END = (
    rf"(?:\s+(?:that\s+|which\s+)?{_DOC}\s+{_MENTIONS}|\s+(?:(?:mentioned|named|listed|"
    rf"cited|referenced|described|discussed|given|found)\s+)?(?:in|from|across|throughout)"
    rf"\s+{_DOC})?"
)
_TOPIC = r"(?P<topic>[a-z][\w'&/-]*(?:\s+[a-z][\w'&/-]*){0,4}?)"
_LIST_PATTERNS = [
    # "List every risk it names", "Please enumerate all the dates in the report"
    rf"{_LEAD}(?:list|enumerate|name|find|extract|give me|show me|collect)\s+(?:out\s+)?"
    rf"{_EVERY}\s+{_TOPIC}{_TOPIC_END}{_END}",
    # "What are all the risks mentioned in the document?"
    rf"^(?:what|which|who)\s+(?:are|were)\s+{_EVERY}\s+{_TOPIC}\s+(?:(?:that\s+)?{_DOC}\s+"
    rf"{_MENTIONS}|(?:mentioned|named|listed|cited|referenced|discussed)\s+in\s+{_DOC})"
    rf"{_END}",
    # "Every risk the document mentions", "All companies it names"
    rf"{_LEAD}(?:every|all(?:\s+the)?)\s+{_TOPIC}\s+(?:that\s+)?{_DOC}\s+{_MENTIONS}{_END}",
]
_LIST = [re.compile(p, re.IGNORECASE) for p in _LIST_PATTERNS]
# A topic made only of these is no topic ("list all of them", "list everything").
_EMPTY_TOPICS = {"of", "them", "these", "those", "it", "things", "thing", "items", "stuff"}


def whole_document_request(question: str) -> WholeRequest | None:
    """The whole-document request `question` makes, or None for a normal question."""
    text = " ".join(question.strip().split())
    if not text or len(text) > 300:  # a long question asks something specific
        return None
    text = text.replace("\u2019", "'")
    for pattern in _LIST:
        m = pattern.match(text)
        if m:
            topic = _topic(m.group("topic"))
            if topic:
                return WholeRequest("list", topic)
    if any(p.match(text) for p in _SUMMARY):
        return WholeRequest("summary")
    return None


def _topic(words: str) -> str:
    """The listed noun phrase, in the plural ("risk" -> "risks")."""
    parts = words.lower().split()
    while parts and parts[0] in ("the", "of", "different", "distinct", "individual"):
        parts = parts[1:]
    if not parts or set(parts) <= _EMPTY_TOPICS:
        return ""
    parts[-1] = plural(parts[-1])
    return " ".join(parts)


def plural(word: str) -> str:
    """English plural of a noun, by the common rules; plurals stay as they are."""
    irregular = {"person": "people", "child": "children", "man": "men", "woman": "women"}
    if word in irregular:
        return irregular[word]
    if word in irregular.values() or (word.endswith("s") and not word.endswith("ss")):
        return word
    if re.search(r"(?:s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def named_document(question: str, docs: Sequence[tuple[str, str]]) -> str | None:
    """The id of the one document (id, file name) whose name the question gives: the
    whole name, the name without its extension, or every word of it ("2023 Q1 AAPL"
    in "Summarize the 2023 Q1 AAPL filing"). The longest name wins; None when none
    does, or when two equally long ones do."""
    asked = question.casefold()
    words = set(re.findall(r"\w+", asked))
    found: list[tuple[int, str]] = []
    for doc_id, name in docs:
        full = name.casefold()
        stem = full.rsplit(".", 1)[0] if "." in full else full
        parts = re.findall(r"\w+", stem)
        if (len(stem) >= 3 and stem in asked) or (len(parts) >= 2 and set(parts) <= words):
            found.append((len(stem), doc_id))
    found.sort(reverse=True)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None
    return found[0][1]
