"""Which documents a question names: BM25 over whole documents, for the words that name.

A chunk rarely says whose it is. "How has NVIDIA's total net sales trended?" finds,
by its words, Apple's income statement ("Total net sales"), while NVIDIA's own table
says "Revenue" and never "NVIDIA": the name is in the document, not in the chunk. So
besides chunk-level BM25 (bm25.py), each document as a whole is scored for the
question's *naming* words (`named_words`: capitalized words and acronyms, e.g.
"NVIDIA", "Apple's", "MERS-CoV"), with BM25 over documents (a document's term
frequencies summed over its chunks, headers included; Lucene idf over documents).
A name found in all documents weighs nothing; one found in a few weighs much.

`DocumentWeights` holds those per-(term, document) weights, built with the chunk
index from its postings (summed per document); the `names` step of retrieval/adjustments.py
uses them only when no one of the best fused candidates contains all of the question's
names (otherwise a chunk already carries them; docs/retrieval.md gives what was measured).

Left out: names the question spells differently from the documents ("MSFT" for
"Microsoft"), and periods ("Q1 2023" is a quarter that a filing calls "April 1, 2023";
periods.py matches them with the file names instead).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_WORD_RE = re.compile(r"[\w&'-]+", re.UNICODE)
# Document-level BM25 parameters: bm25s/Lucene's defaults, as for chunks. 0.5 to 5 for
# k1 and 0.3 to 1 for b moved no measure by more than a question on either dataset.
K1 = 1.2
B = 0.75
_SENTENCE_END = re.compile(r"[.!?:]\s+[\"'(\[]*$")  # what precedes a sentence's first word
_LEAD = " \t\n\"'(["  # what may come before the question's first word


def named_words(question: str) -> list[str]:
    """The words of `question` that name something: capitalized ones, except that a
    sentence's first word counts only when more capitals follow ("NVIDIA", "MERS-CoV";
    not "Summarize" or the "If" of "... quarters? If so, ..."). Give it the question as
    asked: `query.clean_query` drops stop words, so "Has Apple ..." would start with
    "Apple" and lose it.

    One pass, linear in the question's length: whether a word starts a sentence is read
    from the text since the previous capitalized word only (a sentence's end is made of
    punctuation, spaces and opening quotes, none of which a capitalized word holds), not
    from all the text before it (that was quadratic: 24 s for a 200 KB question)."""
    out = []
    lead = len(question) - len(question.lstrip(_LEAD))  # the first word starts here
    since = 0  # the end of the previous capitalized word
    for m in _WORD_RE.finditer(question):
        w = m.group()
        if not w[:1].isupper():
            continue
        first = m.start() <= lead or _SENTENCE_END.search(question, since, m.start())
        since = m.end()
        if not first or any(c.isupper() for c in w[1:]):
            out.append(w)
    return out


@dataclass
class DocumentWeights:
    """BM25 weight of each (word, document) pair, word-major: the documents of word
    `t` are `docs[ptr[t]:ptr[t+1]]`, with `weights` alongside."""

    n_docs: int = 0
    ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    docs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def build(
        cls,
        words: np.ndarray,
        docs: np.ndarray,
        tf: np.ndarray,
        doc_lengths: np.ndarray,
        n_words: int,
    ) -> DocumentWeights:
        """From the chunk index's postings of words: each (word, chunk) pair's word,
        document and term frequency, sorted by word and then by chunk, with the chunks of
        a document next to each other (bm25_build.py builds them so); `doc_lengths` are the
        documents' term counts. A document's frequency of a word is the sum over its
        chunks, so no pass over the tokens is needed."""
        n_docs = len(doc_lengths)
        if not n_docs or not n_words or not len(words):
            return cls(n_docs=n_docs, ptr=np.zeros(n_words + 1, np.int64))
        keys = words.astype(np.int64) * n_docs + docs
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        doc_tf = np.add.reduceat(tf.astype(np.float64), starts)
        words, docs = words[starts].astype(np.int64), docs[starts].astype(np.int64)
        df = np.bincount(words, minlength=n_words)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        lengths = np.asarray(doc_lengths, dtype=np.float64)
        avg = float(lengths.mean()) or 1.0
        norm = K1 * (1.0 - B + B * lengths[docs] / avg)
        return cls(
            n_docs=n_docs,
            ptr=np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
            docs=docs.astype(np.int32),
            weights=(idf[words] * doc_tf / (doc_tf + norm)).astype(np.float32),
        )

    def of(self, word: int, names: Sequence[str]) -> dict[str, float]:
        """The weight of `word` in each document it occurs in, by `names[document]`."""
        if not 0 <= word < len(self.ptr) - 1:
            return {}
        part = slice(self.ptr[word], self.ptr[word + 1])
        docs, weights = self.docs[part].tolist(), self.weights[part].tolist()
        return {names[d]: w for d, w in zip(docs, weights, strict=True)}
