"""The shape of the code, held by tests: module sizes and who may import what.

- every module in rag/ and pages/ is at most 400 lines (one idea per module);
- rag/engine.py, the facade, stays under 250 lines (the work is in rag/services/);
- nothing in rag/ imports streamlit (the pages render; the package works without them);
- nothing in rag/ outside rag/datasets/ and rag/cli/ imports rag.datasets (the
  evaluation datasets stay out of the engine; the `eval` command reads their registry);
- the pages and app.py import DocChat's public API, `rag`, and no module inside it.

Pure file reading and `ast` parsing: no module is imported, so this runs in well under
a second. Left out: the layers between the other packages, which the import-linter
contract in pyproject.toml holds (`lint-imports`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RAG = ROOT / "rag"
MAX_LINES = 400
MAX_ENGINE_LINES = 250  # strictly under


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, anywhere in it (inside functions and TYPE_CHECKING
    blocks too), as dotted names; `from a import b` gives both `a` and `a.b`, since b
    may be a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_scan_finds_the_package() -> None:
    # Guards the tests below against passing on an empty list.
    assert len(_modules("rag")) > 50 and _modules("pages")
    assert "rag/engine.py" in {_name(p) for p in _modules("rag")}


@pytest.mark.parametrize("path", _modules("rag", "pages"), ids=_name)
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = _lines(path)
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines (at most {MAX_LINES})"


def test_engine_is_a_thin_facade() -> None:
    lines = _lines(RAG / "engine.py")
    assert lines < MAX_ENGINE_LINES, f"rag/engine.py has {lines} lines (under {MAX_ENGINE_LINES})"


def test_rag_never_imports_streamlit() -> None:
    found = [
        f"{_name(p)} imports {name}"
        for p in _modules("rag")
        for name in _imported(p)
        if _within(name, "streamlit")
    ]
    assert not found, found


def test_only_datasets_and_cli_import_the_datasets() -> None:
    allowed = (RAG / "datasets", RAG / "cli")
    found = sorted(
        {
            f"{_name(p)} imports rag.datasets"
            for p in _modules("rag")
            if not any(p.is_relative_to(folder) for folder in allowed)
            for name in _imported(p)
            if _within(name, "rag.datasets")
        }
    )
    assert not found, found


def _is_module(name: str) -> bool:
    """Whether `rag.x...` names a module or package of rag/ (not a name `rag` exports)."""
    first = name.split(".")[1] if name.count(".") else ""
    return bool(first) and ((RAG / first).is_dir() or (RAG / f"{first}.py").is_file())


def test_pages_use_only_the_public_api() -> None:
    found = sorted(
        f"{_name(p)} imports {name}"
        for p in [*_modules("pages"), ROOT / "app.py"]
        for name in _imported(p)
        if _within(name, "rag") and _is_module(name)
    )
    assert not found, found
