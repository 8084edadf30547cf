"""Turn retrieved sources into an answer: streamed from an LLM, or extracted.

`Retrieval` (context.py) is everything the retrieval stage decided (cleaned query,
sources, prompt). `AnswerStream` iterates the answer's text as it arrives and, once done,
holds the final `Answer`. If the LLM fails half-way the stream raises `LLMError`,
but `.answer` still carries the sources and the error, so the UI never loses them.
Used as a context manager, leaving the block ends the stream however it went
(complete, failed, or stopped by the user: an exception, or the consumer's break)
and hands the answer once to `on_finish(answer, stopped)`, e.g. to save the turn.

Without an LLM, the extractive answer quotes the sentences of the top sources that
best match the question (by embedding similarity), each with its citation.

A complete LLM answer is then checked sentence by sentence against its sources
(`checking.py`, as `claim_check` says). Left out: multi-turn tool use.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Self

import numpy as np

from rag.answering.checking import with_claims
from rag.answering.context import Retrieval
from rag.answering.prompts import standalone_question_messages
from rag.components.embeddings import Embedder
from rag.components.generation import LLM
from rag.core.errors import LLMError, RagError
from rag.core.models import Answer, Mode, Source
from rag.core.text import Message, cited_numbers, sentence_spans

NO_ANSWER_TEXT = (
    "The documents do not seem to cover this: no passage was relevant enough to answer "
    "from. Try rephrasing, lowering the relevance threshold, or adding documents."
)
EXTRACTIVE_LABEL = "Extractive answer (no LLM configured): the most relevant sentences, quoted."

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")  # Markdown headings are titles, not claims


def split_sentences(text: str) -> list[str]:
    """The sentences of a chunk worth quoting, in order."""
    out = []
    for start, end in sentence_spans(text):
        lines = [line for line in text[start:end].splitlines() if not _HEADING.match(line)]
        # PDF text breaks lines mid-sentence: fold the whitespace.
        sentence = " ".join(" ".join(lines).split())
        if len(sentence) >= 20:  # fragments (headers, numbers) make poor quotes
            out.append(sentence)
    return out


def extractive_answer(
    query: str, sources: tuple[Source, ...], embedder: Embedder, *, max_sentences: int = 3
) -> str:
    """The best-matching sentences of the top sources, each cited, in source order."""
    candidates: list[tuple[int, int, str]] = []  # (source n, position, sentence)
    seen: set[str] = set()  # neighbouring chunks overlap: quote a sentence once
    for s in sources[:4]:
        for pos, sent in enumerate(split_sentences(s.chunk.text)[:40]):
            key = " ".join(sent.casefold().split())
            if key not in seen:
                seen.add(key)
                candidates.append((s.n, pos, sent))
    if not candidates:
        return NO_ANSWER_TEXT
    vecs = embedder.embed([query] + [c[2] for c in candidates])
    scores = vecs[1:] @ vecs[0]
    best = sorted(np.argsort(-scores)[:max_sentences].tolist(), key=lambda i: candidates[i][:2])
    quotes = [f"> {candidates[i][2]} [{candidates[i][0]}]" for i in best]
    return EXTRACTIVE_LABEL + "\n\n" + "\n>\n".join(quotes)


Finished = Callable[[Answer, bool], None]  # (the answer, stopped before its end)


class TextStream:
    """What the chat page and the API consume: an answer's text deltas, then its
    `Answer`. Leaving a `with` block ends the stream however it went and calls its
    `on_finish` once. `AnswerStream` (top-k), `SummaryStream` (a whole document) and
    `SettledStream` (an answer known at once) make their text in `_text`, build their
    answer in `_finish` and end in `close`; `answer` is set when the stream has ended."""

    stopped: bool = False  # ended early, without an error: stopped by its consumer
    mode: Mode
    answer: Answer | None = None
    _deltas: Generator[str, None, None] | None = None

    def _text(self) -> Iterator[str]:
        raise NotImplementedError

    def _finish(self, seconds: float, error: str) -> None:
        raise NotImplementedError

    def _generate(self) -> Generator[str, None, None]:
        t0 = time.perf_counter()
        error = ""
        try:
            yield from self._text()
        except LLMError as e:
            error = str(e)
            raise
        except BaseException:  # GeneratorExit (closed early) or the consumer's own stop
            self.stopped = True
            raise
        finally:
            # Built even when the consumer stops early or generation fails, so the
            # sources and the partial text survive.
            self._finish(time.perf_counter() - t0, error)

    def close(self) -> None:
        """End the stream (a no-op once it ended): what arrived so far is the answer."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        if self._deltas is None:
            self._deltas = self._generate()
        return self._deltas

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self) -> Answer:
        """Consume the whole stream and return the answer (raises LLMError on failure)."""
        for _ in self:
            pass
        return self.result()

    def result(self) -> Answer:
        """The answer of a stream that ended (complete, failed or stopped)."""
        if self.answer is None:
            raise RuntimeError("The answer stream has not ended yet.")
        return self.answer


class SettledStream(TextStream):
    """A stream whose answer is known at once (e.g. a question whose search failed:
    the failure is its answer); `on_finish` was the caller's to call."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.mode = answer.mode

    def _generate(self) -> Generator[str, None, None]:
        yield from ()  # nothing to make, nor to finish: the answer was saved by its caller

    def close(self) -> None:
        pass


class AnswerStream(TextStream):
    """Iterate text deltas; afterwards `.answer` holds the complete `Answer`."""

    def __init__(
        self,
        retrieval: Retrieval,
        *,
        llm: LLM | None,
        embedder: Embedder,
        model: str | None = None,
        temperature: float | None = None,
        on_finish: Finished | None = None,
        claim_check: str = "off",
    ) -> None:
        self.retrieval = retrieval
        self._on_finish = on_finish
        self._claim_check = claim_check  # "off", "local" or "llm": checking.py
        self._deltas: Generator[str, None, None] | None = None
        self.stopped = False  # ended early, without an error: stopped by its consumer
        self._llm = llm
        self._embedder = embedder
        self._model = model
        self._temperature = temperature
        self._parts: list[str] = []
        self._completion_tokens = 0  # when the server reports usage
        self.answer: Answer | None = None
        if not retrieval.sources:
            self.mode: Mode = "no-answer"
        elif llm is None:
            self.mode = "extractive"
        else:
            self.mode = "llm"

    def close(self) -> None:
        """End the stream (a no-op once it ended): what arrived so far is the answer."""
        if self._deltas is not None:
            self._deltas.close()
        if self.answer is None:  # never iterated
            self.stopped = True
            self._finish(0.0, "")

    def _text(self) -> Iterator[str]:
        if self.mode == "no-answer":
            yield from self._emit(NO_ANSWER_TEXT)
        elif self.mode == "extractive":
            text = extractive_answer(self.retrieval.query, self.retrieval.sources, self._embedder)
            yield from self._emit(text)
        else:
            assert self._llm is not None
            deltas = self._llm.stream(
                self.retrieval.prompt.messages,
                model=self._model,
                temperature=self._temperature,
            )
            try:
                for delta in deltas:
                    yield from self._emit(delta)
                if deltas.completion is not None:
                    self._completion_tokens = deltas.completion.completion_tokens
            finally:
                # Now, not when collected (a ChatStream and its generator hold each
                # other): a stopped answer or a client gone ends the LLM's connection.
                deltas.close()

    def _emit(self, text: str) -> Iterator[str]:
        self._parts.append(text)
        yield text

    def _finish(self, seconds: float, error: str) -> None:
        r = self.retrieval
        text = "".join(self._parts)
        self.answer = Answer(
            text=text,
            mode=self.mode,
            question=r.question,
            query=r.query,
            sources=r.sources,
            cited=cited_numbers(text, len(r.sources)),
            prompt_tokens=r.prompt.tokens if self.mode == "llm" else 0,
            left_out=r.prompt.left_out,
            timings={**r.timings, "generate": seconds},
            error=error,
            llm_calls=1 if self.mode == "llm" else 0,
            completion_tokens=self._completion_tokens,
            notes=r.notes,
        )
        if not self.stopped:
            self.answer = with_claims(self.answer, r.sources, mode=self._claim_check,
                                      embedder=self._embedder, llm=self._llm,
                                      model=self._model)  # fmt: skip
        if self._on_finish is not None:
            self._on_finish(self.answer, self.stopped)


# A rewritten question is one sentence; 120 tokens leave room for a long one. Greedy
# decoding: the rewrite should restate the question, not vary it.
STANDALONE_MAX_TOKENS = 120


def standalone_question(llm: LLM | None, question: str, history: Sequence[Message]) -> str:
    """A follow-up rewritten to stand alone (needs an LLM; otherwise unchanged)."""
    if llm is None or not history:
        return question
    try:
        rewritten = llm.complete(
            standalone_question_messages(question, history),
            max_tokens=STANDALONE_MAX_TOKENS,
            temperature=0.0,
        ).text.strip()
    except RagError:
        return question  # retrieval with the raw follow-up still works
    return rewritten or question
