"""A whole document summarized (or every X in it listed), streamed like an answer.

With an LLM, map-reduce: the document's chunks, in order and numbered 1..N over the
whole document, are grouped into parts that fit the prompt budget (`context_tokens`);
each part is summarized with the numbers of its passages (`complete`, one call per
part: "map"); partial summaries are combined, in groups that fit the budget, until
one call can take them all (more `complete` calls: "reduce"); that last call is
streamed (`stream`), and its citations are renumbered 1..m as they pass (renumber.py),
the cited chunks becoming the answer's sources in that order. Without an LLM, an
extractive summary (central.py): the most central sentences of each section.

Every request's cost is bounded: reading stops when `seconds` have passed or when
more parts would leave no calls for combining within `max_calls`; the answer then
says which part of the document it covers. Progress goes to `on_progress` per step
("reading part 4 of 12 (pages 10-13)"), and the stream yields an empty delta after
each step, a point where its consumer can stop it (`close`, or leaving the `with`
block, which also closes the LLM's stream). An `LLMError` half-way raises, like
`AnswerStream`, with `Answer.error` set and what was done kept: the text streamed so
far or, before the final call, the partial summaries made.

Token counts are the server's; a server that reports none gets estimates (about 4
characters a token) and `tokens_estimated` says so.

Left out: reading parts in parallel (one call at a time keeps a local server's load
and the request's cost predictable), caching summaries between requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

from rag.answering import central
from rag.answering.checking import with_claims
from rag.answering.prompts import estimate_tokens
from rag.answering.renumber import Renumber
from rag.answering.stream import Finished, TextStream
from rag.answering.summary_plan import Partial, Plan, label
from rag.answering.summary_prompts import (
    message_tokens,
    partials_body,
    passages,
    passages_body,
    system_message,
    user_message,
)
from rag.answering.whole import whole_document_request
from rag.components.embeddings import Embedder
from rag.components.generation import LLM, Completion
from rag.core.errors import LLMError
from rag.core.models import Answer, Chunk, Hit, Mode, Source
from rag.core.settings import ENV_NAMES
from rag.core.text import Message, cited_numbers

EMPTY_TEXT = "The document has no text to summarize."


@dataclass(frozen=True)
class SummaryProgress:
    """One step of a summary: `done` of about `total` steps, e.g. "reading part 4 of 12"."""

    done: int
    total: int
    label: str


Progress = Callable[[SummaryProgress], None]


class SummaryStream(TextStream):
    """Iterate text deltas; afterwards `.answer` holds the complete `Answer` (kind
    "summary")."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        *,
        llm: LLM | None,
        budget: int,
        seconds: float,
        max_calls: int,
        name: str = "",
        question: str = "",
        model: str | None = None,
        temperature: float | None = None,
        on_progress: Progress | None = None,
        on_finish: Finished | None = None,
        clock: Callable[[], float] = time.monotonic,
        embedder: Embedder | None = None,
        claim_check: str = "off",
    ) -> None:
        self.chunks = sorted(chunks, key=lambda c: c.index)
        self._embedder, self._claim_check = embedder, claim_check  # checking.py
        self.question = question
        self.name = name
        request = whole_document_request(question) if question else None
        self.kind = request.kind if request else "summary"
        self.topic = request.topic if request else ""
        self._llm, self._model, self._temperature = llm, model, temperature
        self._seconds = seconds
        self._on_progress, self._on_finish, self._clock = on_progress, on_finish, clock
        self._deltas: Generator[str, None, None] | None = None
        self._parts: list[str] = []  # the text shown
        self._partials: list[Partial] = []  # the parts' summaries so far
        self._why = ""  # why reading stopped early: "time" or "calls"
        self._renumber = Renumber(len(self.chunks))
        self._numbered = passages(self.chunks) if llm is not None else []
        last = self.chunks[-1] if self.chunks else None
        self._end = (
            max(c.page or 0 for c in self.chunks) if last and last.page else len(self.chunks)
        )
        budget = max(500, budget)
        words = max(100, budget // 8) * 3 // 4  # Plan.partial_words, for the overheads
        asked = estimate_tokens(question) + 10
        self._plan = Plan(
            budget=budget,
            max_calls=max(1, max_calls),
            map_overhead=message_tokens([self._system("map", words, part=999, parts=999)]) + asked,
            combine_overhead=message_tokens([self._system("final", words)]) + asked + 30,
        )
        self._stop = False
        self._step = 0
        self._total = 1
        self.stopped = False
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self.tokens_estimated = False  # the server reported no usage for some call
        self.covered = ""  # "pages 1-34 of 80" when reading stopped before the end
        self.answer: Answer | None = None
        if not self.chunks:
            self.mode: Mode = "no-answer"
        else:
            self.mode = "extractive" if llm is None else "llm"

    # -- the stream ---------------------------------------------------------------------

    def close(self) -> None:
        """End the stream (a no-op once it ended): what was written so far is the answer.
        From another thread while a step runs, it ends after that step."""
        self._stop = True
        if self._deltas is not None:
            try:
                self._deltas.close()
            except ValueError:  # running in another thread: it sees `_stop` next step
                return
        if self.answer is None:  # never iterated
            self.stopped = True
            self._finish(0.0, "")

    def _text(self) -> Iterator[str]:
        if self.mode == "no-answer":
            yield from self._emit(EMPTY_TEXT)
        elif self.mode == "extractive":
            yield from self._extractive()
        else:
            yield from self._map_reduce()

    def _emit(self, text: str) -> Iterator[str]:
        if text:
            self._parts.append(text)
        yield text

    def _progress(self, label: str) -> None:
        self._step += 1
        self._total = max(self._total, self._step)
        if self._on_progress is not None:
            self._on_progress(SummaryProgress(self._step, self._total, label))

    # -- without an LLM -----------------------------------------------------------------

    def _extractive(self) -> Iterator[str]:
        def report(i: int, n: int, group: central.Group) -> None:
            self._total = n
            self._progress(f"reading section {i} of {n}")

        picked = central.extract(self.chunks, topic=self.topic, on_group=report)
        label = (
            central.EXTRACTIVE_LIST_LABEL.format(topic=self.topic)
            if self.topic
            else central.EXTRACTIVE_SUMMARY_LABEL
        )
        if not picked:
            yield from self._emit(f"{label}\n\nNo sentence of the document could be quoted.")
            return
        yield from self._emit(
            central.render(picked, lambda c: self._renumber.number(c.index + 1), label)
        )

    # -- with an LLM --------------------------------------------------------------------

    def _map_reduce(self) -> Generator[str, None, None]:
        start, plan = self._clock(), self._plan
        parts = plan.parts(self._numbered)
        readable = plan.affordable(len(parts))
        self._total = plan.calls(readable)
        words = plan.partial_words
        if readable == 1:  # the document fits one call: no partial summaries
            if len(parts) > 1:
                self.covered, self._why = self._where(parts[0][0].n, parts[0][-1].n), "calls"
            self._progress("reading the document")
            body = passages_body(parts[0])
            yield from self._final([self._system("single", words),
                                    user_message(body, self.question, "single")])  # fmt: skip
            return
        for i, part in enumerate(parts[:readable]):
            if i > 0 and (self._clock() - start > self._seconds or self._stop):
                break
            where = label(self.chunks, part[0].n, part[-1].n)
            self._progress(f"reading part {i + 1} of {readable} ({where})")
            system = self._system("map", words, part=i + 1, parts=len(parts))
            done = self._complete([system, user_message(passages_body(part), "", "map")])
            self._partials.append((part[0].n, part[-1].n, done.text))
            yield ""
        read = len(self._partials)
        if read < len(parts):
            self.covered = self._where(1, self._partials[-1][1])
            self._why = "time" if read < readable else "calls"
        partials = list(self._partials)
        while not self._stop:
            groups = plan.groups(partials)
            if len(groups) == 1:
                break
            needed = sum(len(g) > 1 for g in groups)
            late = self._clock() - start > self._seconds
            if late or needed == 0 or self.calls + needed + 1 > plan.max_calls:
                partials = plan.squeeze(partials)
                break
            combined = []
            for g in groups:
                if len(g) == 1:
                    combined.append(g[0])
                    continue
                self._progress(f"combining {len(g)} partial summaries")
                body = partials_body(self._labelled(g))
                done = self._complete([self._system("reduce", words),
                                       user_message(body, "", "reduce")])  # fmt: skip
                combined.append((g[0][0], g[-1][1], done.text))
                yield ""
            partials = combined
        if self._stop:
            self.stopped = True
            return
        self._total = self._step + 1  # the last step: the plan was an estimate
        self._progress(f"writing the summary from {len(partials)} partial summaries")
        body = partials_body(self._labelled(partials))
        yield from self._final([self._system("final", words),
                                user_message(body, self.question, "final")])  # fmt: skip

    def _system(self, step: str, words: int, *, part: int = 0, parts: int = 0) -> Message:
        return system_message(step, kind=self.kind, topic=self.topic, words=words, part=part,
                              parts=parts, question=self.question, name=self.name)  # fmt: skip

    def _labelled(self, partials: Sequence[Partial]) -> list[tuple[str, str]]:
        """(where, text) of each partial: "pages 7-9", or "passages 30-41" unpaged."""
        return [(label(self.chunks, a, b), t) for a, b, t in partials]

    def _where(self, first: int, last: int) -> str:
        return label(self.chunks, first, last, of=self._end)

    def _complete(self, messages: list[Message]) -> Completion:
        done = self._llm_or_fail().complete(
            messages, model=self._model, temperature=self._temperature,
            max_tokens=self._plan.partial_tokens,
        )  # fmt: skip
        self._count(messages, done)
        return done

    def _llm_or_fail(self) -> LLM:
        if self._llm is None:  # unreachable: the mode is "llm" only with one
            raise LLMError("No LLM is configured.")
        return self._llm

    def _count(self, messages: list[Message], done: Completion | None, text: str = "") -> None:
        self.calls += 1
        prompt = done.prompt_tokens if done else 0
        completion = done.completion_tokens if done else 0
        if not prompt:
            self.tokens_estimated = True
            prompt = message_tokens(messages)
            completion = estimate_tokens(done.text if done else text)
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def _final(self, messages: list[Message]) -> Generator[str, None, None]:
        """The last call, streamed, its citations renumbered as they pass."""
        deltas = self._llm_or_fail().stream(messages, model=self._model,
                                            temperature=self._temperature)  # fmt: skip
        streamed: list[str] = []
        try:
            for delta in deltas:
                streamed.append(delta)
                yield from self._emit(self._renumber.feed(delta))
                if self._stop:
                    self.stopped = True
                    return
            yield from self._emit(self._renumber.flush())
        finally:
            deltas.close()  # now: a stopped summary ends the LLM's connection at once
            self._count(messages, deltas.completion, "".join(streamed))
        if self.covered:
            yield from self._emit(self._note())

    def _note(self) -> str:
        if self._why == "time":
            why = f"the time limit of {self._seconds:g} s ({ENV_NAMES['summary_seconds']}) ran out"
        else:
            why = f"a summary makes at most {self._plan.max_calls} LLM calls " \
                f"({ENV_NAMES['summary_max_calls']})"  # fmt: skip
        return f"\n\n(This summary covers {self.covered} only: {why}.)"

    # -- the answer ---------------------------------------------------------------------

    def _finish(self, seconds: float, error: str) -> None:
        text = "".join(self._parts)
        if error and not text.strip() and self._partials:
            # The final call never ran: the partial summaries are what was done.
            labelled = self._labelled(self._partials)
            body = "\n\n".join(f"{label}:\n{t.strip()}" for label, t in labelled)
            text = "Partial summaries, made before the LLM failed:\n\n" + self._renumber.text(body)
        sources = tuple(
            Source(n=i, hit=Hit(self.chunks[n - 1], 0.0))
            for i, n in enumerate(self._renumber.order, start=1)
        )
        self.answer = Answer(
            text=text,
            mode=self.mode,
            question=self.question,
            query="",
            sources=sources,
            cited=cited_numbers(text, len(sources)),
            prompt_tokens=self.prompt_tokens,
            timings={"generate": seconds},
            error=error,
            kind="summary",
            llm_calls=self.calls,
            completion_tokens=self.completion_tokens,
        )
        if not self.stopped:
            self.answer = with_claims(self.answer, sources, mode=self._claim_check,
                                      embedder=self._embedder, llm=self._llm,
                                      model=self._model)  # fmt: skip
        if self._on_finish is not None:
            self._on_finish(self.answer, self.stopped)
