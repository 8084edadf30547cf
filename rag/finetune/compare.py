"""One question, answered four ways: base or fine-tuned model, each alone or with RAG.

"Alone" sends only the fine-tuning system prompt and the question (what the tuned
model was trained on); "with RAG" sends the same prompt the chat uses, with the
retrieved sources. Retrieval runs once and both RAG variants share it. The calls
run one after another, so each variant's latency is its own and not a share of a
busy server. A variant that fails keeps its error; the others still answer.

`compare` takes what it needs from the engine as a `Retriever` (a `DocChat` is one):
its LLM and its retrieval stage, so this stage does not import the engine above it.

Left out: judging which answer is better (people read them side by side), and
streaming the four answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rag.answering.prompts import estimate_tokens
from rag.answering.stream import NO_ANSWER_TEXT, Retrieval
from rag.components.generation import LLM
from rag.core.errors import ConfigError, LLMError
from rag.core.models import Source
from rag.finetune.dataset import question_messages

# Room for a full answer; the same cap for all four, so their lengths compare.
ANSWER_MAX_TOKENS = 600

VARIANTS: dict[str, str] = {
    "base": "Base model alone",
    "base+rag": "Base model + RAG",
    "tuned": "Fine-tuned model alone",
    "tuned+rag": "Fine-tuned model + RAG",
}


class Retriever(Protocol):
    """What `compare` needs from the engine (`DocChat` has both)."""

    @property
    def llm(self) -> LLM | None: ...

    def retrieve(self, question: str, *, collection: str | None = None) -> Retrieval: ...


@dataclass(frozen=True)
class Variant:
    """One of the four answers."""

    key: str  # base, base+rag, tuned, tuned+rag
    label: str
    model: str
    rag: bool
    text: str = ""
    seconds: float = 0.0  # the LLM call alone (retrieval is shared, see `retrieval_seconds`)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    sources: tuple[Source, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Comparison:
    question: str
    variants: tuple[Variant, ...]
    retrieval_seconds: float

    def get(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)


def compare(
    retriever: Retriever,
    question: str,
    *,
    fine_tuned_model: str | None,
    base_model: str | None = None,
    system_prompt: str = "",
    collection: str | None = None,
    max_tokens: int = ANSWER_MAX_TOKENS,
    on_variant: Callable[[Variant], None] | None = None,
) -> Comparison:
    """The four answers (two when no fine-tuned model is given), in VARIANTS order."""
    llm = retriever.llm
    if llm is None:
        raise ConfigError("Comparing models needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL.")
    question = question.strip()
    retrieval = retriever.retrieve(question, collection=collection)  # raises on an empty question
    seconds = sum(retrieval.timings.values())
    base = base_model or llm.model
    alone = question_messages(question, system_prompt)  # as the tuned model was trained
    models = {"base": base, "tuned": fine_tuned_model}
    out: list[Variant] = []
    for key, label in VARIANTS.items():
        model = models[key.split("+")[0]]
        if model is None:
            continue
        rag = key.endswith("+rag")
        variant = Variant(key, label, model, rag)
        if rag and not retrieval.sources:
            # What the chat does too: nothing relevant was found, so no model is asked.
            variant = Variant(key, label, model, rag, text=NO_ANSWER_TEXT)
        else:
            messages = retrieval.prompt.messages if rag else alone
            try:
                reply = llm.complete(messages, model=model, max_tokens=max_tokens)
            except LLMError as e:
                variant = Variant(key, label, model, rag, error=str(e))
            else:
                variant = Variant(
                    key,
                    label,
                    model,
                    rag,
                    text=reply.text,
                    seconds=reply.seconds,
                    # Servers that report no usage get the same estimate the prompt uses.
                    prompt_tokens=reply.prompt_tokens
                    or sum(estimate_tokens(m["content"]) + 4 for m in messages),
                    completion_tokens=reply.completion_tokens,
                    sources=retrieval.sources if rag else (),
                )
        out.append(variant)
        if on_variant:
            on_variant(variant)
    return Comparison(question, tuple(out), seconds)
