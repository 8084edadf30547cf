"""The docs agree with the code: docs/settings.md lists every `Settings` field with its
variable and default, docs/performance.md is what benchmarks/report.py writes now, and
the README stays short with links that lead somewhere."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from dataclasses import fields
from pathlib import Path
from types import ModuleType

import pytest

from rag.core.settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SETTINGS_HEAD = ["variable", "field", "default", "meaning"]


def settings_rows() -> list[list[str]]:
    """The rows of every table on docs/settings.md headed `variable | field | default |
    meaning`, as cells without their outer spaces."""
    rows: list[list[str]] = []
    in_table = False
    for line in (DOCS / "settings.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells == SETTINGS_HEAD:
            in_table = True
        elif in_table and not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return rows


def shown(value: object) -> str:
    """A default as the page writes it."""
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def test_every_settings_field_has_an_environment_name() -> None:
    assert {f.name for f in fields(Settings)} == set(ENV_NAMES)


def test_settings_page_lists_exactly_the_settings_fields() -> None:
    rows = settings_rows()
    assert rows, "no table headed | variable | field | default | meaning | in docs/settings.md"
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    on_page = [r[0].strip("`") for r in rows]
    assert len(on_page) == len(set(on_page)), "a variable is listed twice"
    in_code = set(ENV_NAMES.values())
    assert set(on_page) - in_code == set(), "on the page, not in Settings"
    assert in_code - set(on_page) == set(), "in Settings, not on the page"


def test_settings_page_gives_each_variable_its_field_and_default() -> None:
    defaults = Settings()
    field_of = {env: name for name, env in ENV_NAMES.items()}
    for variable, field, default, meaning in settings_rows():
        name = field_of[variable.strip("`")]
        assert field == f"`{name}`", variable
        assert default == shown(getattr(defaults, name)), variable
        assert meaning, f"{variable} has no meaning"


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _full_history() -> bool:
    try:
        cmd = ["git", "rev-parse", "--is-shallow-repository"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "false"


def test_performance_page_is_what_the_report_writes_now() -> None:
    if not _full_history():  # dates come from each results file's last commit
        pytest.skip("not a git checkout with its history")
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    assert page == _report().render(), (
        "docs/performance.md is out of date: run .venv/bin/python benchmarks/report.py"
    )


def test_report_knows_the_command_of_every_results_file() -> None:
    report = _report()
    make = report.bench_commands((ROOT / "Makefile").read_text(encoding="utf-8"))
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert path.name in make or path.name in report.COMMANDS, path.name


def test_bench_commands_come_from_the_bench_target_only() -> None:
    makefile = (
        "bench: x\n"
        "\t$(BIN)/python benchmarks/ingest.py --json benchmarks/results/ingest.json\n"
        "\n"
        "other:\n"
        "\t$(BIN)/python benchmarks/query.py --json benchmarks/results/query.json\n"
    )
    assert _report().bench_commands(makefile) == {
        "ingest.json": ".venv/bin/python benchmarks/ingest.py --json benchmarks/results/ingest.json"
    }


def test_readme_is_short_and_its_doc_links_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\((docs/[^)#\s]+\.md)", readme)
    assert links, "the README links to no page under docs/"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing


def test_docs_links_between_pages_exist() -> None:
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#\s:]+\.md)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).exists(), f"{page.name} links to {link}"
