"""SIGKILL the real `python -m rag ingest` mid-run: nothing reported is lost, nothing half.

A small version of benchmarks/kill_loop.py (which does 20+ kills and writes JSON):
each round kills the CLI at a random point (while it starts, while it ingests, or
just after it starts writing a document), then a fresh
process opens the data dir (running crash recovery) and checks every document is
complete, nothing reported ready is missing, and no orphan chunk is left; a final
uninterrupted run re-adds the interrupted files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.kill_loop import kill_loop, make_corpus
from tests.fixtures.paths import need_shared

KILLS = 4


@pytest.mark.slow
def test_sigkill_during_ingest_loses_nothing(tmp_path: Path) -> None:
    need_shared()
    corpus = tmp_path / "corpus"
    make_corpus(corpus, texts=3, pdfs=("minimal-document.pdf",))
    modes = ("ingesting", "writing", "starting", "writing")
    report = kill_loop(tmp_path, corpus, kills=KILLS, span=3.0, seed=7, modes=modes, log=print)
    print(
        f"\ncrash safety: {report.kills} kills survived in {report.rounds} rounds "
        f"(by moment: {report.kills_by_mode}; {report.killed_mid_write} left a document "
        f"pending), {report.documents_checked} document checks, "
        f"{report.chunks_checked} chunk checks, {len(report.problems)} problems, "
        f"{report.seconds:.0f} s"
    )
    assert report.kills == KILLS
    assert report.problems == []
