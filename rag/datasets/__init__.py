"""The evaluation datasets DocChat is measured on: COVID-QA and SEC 10-Q.

Each module reads its dataset's files into the generic evaluation's articles and
questions (rag/evaluation/) and runs it in a throw-away index. `DATASETS` names them
for `python -m rag eval` (rag/cli/eval.py; `claims.py` and `claim_edits.py` make the
labelled claims of `rag eval claims`, rag/cli/eval_claims.py), the readers of this
package inside `rag/`; benchmarks and tests import the modules directly. A new dataset is a module
with a reader (`read_...`: its documents and questions, or a first slice of them) and
a `run_...` that hands them to `evaluate_corpus`, and one entry in `DATASETS`.

Left out: downloading the data (it is not shipped; `--data PATH` names it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.core.settings import Settings
from rag.datasets.covid_qa import read_covid_qa, run_covid_qa
from rag.datasets.sec_10q import read_sec_10q, run_sec_10q
from rag.evaluation.measures import EvalQuestion, EvalReport
from rag.evaluation.runs import Article, EvalProgress

# (data path, settings, first N documents or all, with baselines, progress,
# retrieval adjustments switched off)
Runner = Callable[
    [Path, Settings, int | None, bool, EvalProgress | None, frozenset[str]], EvalReport
]
# (data path, first N documents or all) -> the documents and the questions they answer
Loader = Callable[[Path, int | None], tuple[list[Article], list[EvalQuestion]]]


@dataclass(frozen=True)
class Dataset:
    """An evaluation dataset: what it is, where its data lies, how it runs."""

    name: str  # the `eval` subcommand
    title: str  # in the printed table
    description: str
    option: str  # `eval all --{option}-data PATH`
    data: Path  # default data path (from the repository root, as `make bench` runs)
    load: Loader
    run: Runner
    measures: tuple[str, ...]  # the main measures: keys of `EvalReport.measures()`
    limit_flag: str  # the small-slice option of the subcommand
    limit_help: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="covid-qa",
            title="COVID-QA",
            description="98 scientific articles, 1,380 questions with the answer's span",
            option="covid",
            data=Path("../shared/data/covid-qa/covidQA.json"),
            load=read_covid_qa,
            run=lambda p, s, n, b, pr, wo: run_covid_qa(
                p, s, articles=n, baselines=b, progress=pr, without=wo
            ),
            measures=("answer_in_context@4000",),
            limit_flag="--articles",
            limit_help="only the first N articles",
        ),
        Dataset(
            name="sec-10-q",
            title="SEC 10-Q",
            description="20 quarterly filings (PDF), 195 analysts' questions",
            option="sec",
            data=Path("../shared/data/sec-10-q"),
            load=read_sec_10q,
            run=lambda p, s, n, b, pr, wo: run_sec_10q(
                p, s, files=n, baselines=b, progress=pr, without=wo
            ),
            measures=("figure_in_context@4000", "doc_hit@5"),
            limit_flag="--files",
            limit_help="only the first N filings and the questions whose sources are among them",
        ),
    )
}

__all__ = ["DATASETS", "Dataset", "Loader", "Runner"]
