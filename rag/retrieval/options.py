"""How one search runs: `SearchOptions`, from the settings or a caller's overrides.

Left out: anything that needs a re-index (chunk size, the embedding model): those are
the collection's, not the search's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from rag.core.errors import ConfigError
from rag.core.settings import Settings
from rag.retrieval.adjustments import STEP_NAMES


class SearchOverrides(TypedDict, total=False):
    """What a caller may change of the settings for one search (None: the setting)."""

    top_k: int | None
    min_score: float | None
    doc_ids: Sequence[str] | None
    hybrid: bool | None
    dense_weight: float | None
    without: Collection[str] | None  # names of adjustments.STEPS to switch off


def unknown_steps(names: Collection[str]) -> list[str]:
    """The names that are not one of the adjustments' steps (`adjustments.STEP_NAMES`)."""
    return sorted(set(names) - set(STEP_NAMES))


@dataclass(frozen=True)
class SearchOptions:
    """How one search runs: the settings' values, or a caller's overrides of them.

    `without` names retrieval adjustments to switch off (adjustments.py); by default
    every one is on."""

    top_k: int
    min_score: float
    doc_ids: tuple[str, ...] = ()  # empty: every document
    hybrid: bool = False
    dense_weight: float = 0.5
    without: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = unknown_steps(self.without)
        if unknown:
            raise ConfigError(
                f"Unknown retrieval adjustment(s) {', '.join(unknown)}: "
                f"expected some of {', '.join(STEP_NAMES)}."
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, **overrides: Unpack[SearchOverrides]
    ) -> SearchOptions:
        """The settings, with each override that is not None (a `top_k` of 0 neither)."""
        o = overrides
        min_score, hybrid, weight = o.get("min_score"), o.get("hybrid"), o.get("dense_weight")
        return cls(
            top_k=o.get("top_k") or settings.top_k,
            min_score=settings.min_score if min_score is None else min_score,
            doc_ids=tuple(o.get("doc_ids") or ()),
            hybrid=settings.hybrid if hybrid is None else hybrid,
            dense_weight=settings.dense_weight if weight is None else weight,
            without=frozenset(o.get("without") or ()),
        )

    def on(self, step: str) -> bool:
        """Whether the adjustment of this name applies (it is not switched off)."""
        return step not in self.without
