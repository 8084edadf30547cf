"""Error messages never carry a server path: a scan of rag/'s source for errors whose
f-string message interpolates a path-like value (`data_dir`, `..._dir`, `path`,
`where`, `folder`, `root`), except a file's bare name (`.name`).

The scan reads `SomeError(f"...{value}...")` calls only: a message built first in a
variable, or a path inside an interpolated exception (`{e}` of an OSError), is not
seen. `ALLOWED` lists the paths that are the user's own (given on the command line,
or a place inside their file).
"""

from __future__ import annotations

import ast
import re

from tests.fixtures.paths import ROOT

_PATHY = re.compile(r"\b(\w*_dir|dir|\w*_path|path|where|folder|root)\b")

# (file, interpolated expression): why it may name a path.
ALLOWED = {
    ("rag/datasets/covid_qa.py", "path"): "the dataset path given to `rag eval`",
    ("rag/datasets/sec_10q.py", "path"): "the dataset path given to `rag eval`",
    ("rag/finetune/qa_file.py", "where"): "a row or line of the user's own Q&A file",
    ("rag/cli/eval_claims.py", "path"): "the --data file given to `rag eval claims`",
    ("rag/datasets/claims.py", "path"): "the dataset path given to `rag eval claims`",
    ("rag/core/settings.py", "secrets_path"): "the operator's secrets file, read at start",
}
# Leaks to fix (the owners of these files are told): a server path shown to users.


def path_messages() -> set[tuple[str, str]]:
    """(file, expression) of every path-like value interpolated into an error's message."""
    found = set()
    for file in sorted((ROOT / "rag").rglob("*.py")):
        source = file.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if not (name.endswith("Error") or name == "Conflict"):
                continue
            for arg in node.args:
                for value in ast.walk(arg):
                    if not isinstance(value, ast.FormattedValue):
                        continue
                    expr = ast.get_source_segment(source, value.value) or ""
                    if _PATHY.search(expr) and not expr.endswith(".name"):
                        found.add((str(file.relative_to(ROOT)), expr))
    return found


def test_no_error_message_interpolates_a_server_path() -> None:
    found = path_messages()
    assert found, "the scan finds nothing at all: is it still reading the source?"
    assert sorted(found - ALLOWED.keys()) == []
