"""What a tuning job may cost, shown before it starts."""

from __future__ import annotations

from rag.core.settings import Settings
from rag.finetune.tuning import SECONDS_PER_PAIR_STEP, TrainOptions


def test_the_most_steps_follow_the_settings_and_a_step_limit() -> None:
    options = TrainOptions.from_settings(Settings(tune_max_pairs=1000, tune_batch_size=32))
    assert options.most_steps == 32 * 2  # ceil(1000 / 32) steps, two epochs
    assert options.estimated_seconds() == 64 * 32 * SECONDS_PER_PAIR_STEP
    assert TrainOptions(max_steps=3).most_steps == 3
