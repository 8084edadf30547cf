"""Fine-tuning the embedding model on (question, passage) pairs, on CPU.

`train_embedding` runs sentence-transformers' trainer with the multiple negatives
ranking loss: for each question its passage must score above every other passage of
the batch and above its hard negative (`tuning_pairs.hard_negatives`). It saves a
sentence-transformers model directory, which the embedders load like any local model
(ONNX int8 export included: `components/tuned_models.py`).

Choices, measured on this 2-core machine: passages are cut to `passage_tokens` (128)
for training only: a step of 32 triplets took 6 s, against 20 s at the model's full
256 tokens; the saved model keeps its 256-token window. Batches never hold the same
passage twice (a duplicate would be a false negative for the other question).

Left out: GPUs, other losses (MNRL needs nothing but positive pairs), checkpoints and
resuming (a stopped job starts again), and choosing hyper-parameters per collection
(the held-out gate in services/tuning.py decides whether a result is used at all).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rag.components.local_model import offline, resolve_model
from rag.core.errors import RagError, TuningCancelled, TuningError
from rag.core.settings import Settings
from rag.finetune.tuning_pairs import TuningPair

log = logging.getLogger(__name__)

# A training step of 32 triplets of 128-token passages took ~6 s on this 2-core CPU:
# what a job's cost shown beforehand (`TrainOptions.estimated_seconds`) scales.
SECONDS_PER_PAIR_STEP = 6.0 / 32
LEARNING_RATE = 2e-5  # sentence-transformers' default for this loss and model size
WARMUP = 0.1  # the share of steps whose learning rate rises from 0


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 2
    batch_size: int = 32
    passage_tokens: int = 128
    max_pairs: int = 2000
    seed: int = 0
    max_steps: int = 0  # 0: the epochs decide (tests train one or two steps)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainOptions:
        base = cls(epochs=settings.tune_epochs, batch_size=settings.tune_batch_size,
                   passage_tokens=settings.tune_passage_tokens,
                   max_pairs=settings.tune_max_pairs)  # fmt: skip
        known = {f.name for f in fields(cls)}
        return replace(base, **{k: v for k, v in overrides.items() if k in known})

    @property
    def most_steps(self) -> int:
        """The training steps of a job with the most pairs these options keep."""
        steps = math.ceil(self.max_pairs / max(self.batch_size, 1)) * self.epochs
        return min(steps, self.max_steps) if self.max_steps else steps

    def estimated_seconds(self) -> float:
        """About how long `most_steps` take here (`SECONDS_PER_PAIR_STEP`)."""
        return self.most_steps * self.batch_size * SECONDS_PER_PAIR_STEP


@dataclass(frozen=True)
class TrainReport:
    pairs: int
    steps: int
    seconds: float
    base_model: str


def train_embedding(
    base_model: str,
    pairs: Sequence[TuningPair],
    out: Path,
    options: TrainOptions,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainReport:
    """Train from `base_model` (a model setting or a local directory) on `pairs` (a
    seeded sample of `max_pairs` when more) and save the model at `out`.

    `progress(step, steps)` after each step; `should_stop()` is asked after each step
    and ends the training with `TuningCancelled`. Any failure is a `TuningError`."""
    if len(pairs) < 2:
        raise TuningError("Tuning needs at least 2 training pairs.")
    if options.batch_size < 2 or options.epochs < 1:
        raise TuningError("Tuning needs a batch of at least 2 pairs and at least 1 epoch.")
    if not Path(resolve_model(base_model)).is_dir():
        raise TuningError(
            f"The collection's model {base_model!r} is not a local sentence-transformers "
            "model, so it cannot be tuned here."
        )
    chosen = list(pairs)
    if len(chosen) > options.max_pairs:
        chosen = random.Random(options.seed).sample(chosen, options.max_pairs)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="docchat-tune-"))
    try:
        steps, stopped = _train(base_model, chosen, out, work, options, progress, should_stop)
    except RagError:
        raise
    except Exception as e:  # torch, transformers and datasets raise many kinds
        # The kind only: their messages may hold paths and URLs (not safe to show).
        log.warning("tuning failed: %s: %s", type(e).__name__, e)
        raise TuningError(f"Training failed ({type(e).__name__}); see the log.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if stopped:
        shutil.rmtree(out, ignore_errors=True)
        raise TuningCancelled("Tuning was cancelled; the collection keeps its model.")
    return TrainReport(len(chosen), steps, time.perf_counter() - t0, base_model)


def _train(
    base_model: str,
    pairs: list[TuningPair],
    out: Path,
    work: Path,
    options: TrainOptions,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[int, bool]:
    offline()
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = SentenceTransformer(resolve_model(base_model), device="cpu")
    window = model.max_seq_length or 256
    model.max_seq_length = min(window, options.passage_tokens)
    rows = _rows(pairs, options.seed)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work), num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1, per_device_train_batch_size=options.batch_size,
        learning_rate=LEARNING_RATE, warmup_steps=WARMUP, seed=options.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
    )  # fmt: skip
    stopped = False

    class Follow(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            nonlocal stopped
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps))
            if should_stop is not None and should_stop():
                stopped = control.should_training_stop = True

    # Not ours to show: the model card's progress bar (drawn while the trainer is made;
    # only then is the output redirected, since the redirection is the whole process's
    # and a caller prints progress from another thread) and the trainer's summary line.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows),
            loss=MultipleNegativesRankingLoss(model), callbacks=[Follow()],
        )  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    state = trainer.train()
    if not stopped:
        model.max_seq_length = window  # the saved model reads its whole window
        model.save(str(out))
    return int(state.global_step), stopped


def _rows(pairs: Sequence[TuningPair], seed: int) -> list[dict[str, str]]:
    """The trainer's columns: (anchor, positive, negative) when any pair has a hard
    negative (one missing is a passage of another document, seeded), else two."""
    if not any(p.negative for p in pairs):
        return [{"anchor": p.question, "positive": p.passage} for p in pairs]
    rng = random.Random(seed)
    rows = []
    for p in pairs:
        negative = p.negative
        for _ in range(10 if not negative else 0):
            other = pairs[rng.randrange(len(pairs))]
            if other.doc_id != p.doc_id:
                negative = other.passage
                break
        rows.append({"anchor": p.question, "positive": p.passage,
                     "negative": negative or pairs[rng.randrange(len(pairs))].passage})  # fmt: skip
    return rows
