"""`python -m rag` as other tools call it: real subprocesses, the real packaged model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.fixtures.paths import BROKEN, ROOT, SAMPLES, need_shared

pytestmark = pytest.mark.slow


def rag(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DOCCHAT_CHROMA_HOST"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=data_dir.parent,
    )


def test_tracemonkey_done_when(tmp_path: Path) -> None:
    need_shared()
    data = tmp_path / "data"
    pdf = SAMPLES / "tracemonkey.pdf"
    first = rag(data, "ingest", str(pdf))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("indexed    tracemonkey.pdf: 14 page(s)")

    ask = rag(data, "ask", "How are type-unstable loops handled?", "--json")
    assert ask.returncode == 0, ask.stderr
    out = json.loads(ask.stdout)
    assert set(out) >= {"answer", "mode", "query", "sources"}
    assert out["mode"] == "extractive"
    pages = [p.extract_text() for p in PdfReader(pdf).pages]
    assert out["sources"]
    for s in out["sources"]:
        assert set(s) >= {"n", "file", "page", "section", "start", "end", "score", "text"}
        assert s["file"] == "tracemonkey.pdf"
        assert pages[s["page"] - 1][s["start"] : s["end"]] == s["text"]
    assert any("type-unstable" in s["text"] for s in out["sources"])

    again = rag(data, "ingest", str(pdf), "--json")
    assert json.loads(again.stdout)[0]["status"] == "unchanged"
    docs = json.loads(rag(data, "docs", "--json").stdout)
    assert [d["chunks"] for d in docs] == [json.loads(again.stdout)[0]["chunks"]]

    search = json.loads(rag(data, "search", "trace trees", "--top-k", "3", "--json").stdout)
    assert len(search) == 3 and search[0]["n"] == 1
    assert all(s["chunk"] == s["index"] for s in search)

    # `show` writes the page a source stands on, its chunk marked (the page alone too).
    out = data.parent / "page.png"
    first = search[0]
    shown = rag(data, "show", "tracemonkey.pdf", "--chunk", str(first["chunk"]),
                "--out", str(out), "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    meta = json.loads(shown.stdout)
    assert meta["page"] == first["page"] and meta["chunk"] == first["chunk"] and meta["boxes"]
    assert out.read_bytes().startswith(b"\x89PNG")
    alone = rag(data, "show", "tracemonkey.pdf", "--page", "3", "--out", str(out))
    assert alone.returncode == 0 and alone.stdout.startswith("page 3 of 14:")
    missing_page = rag(data, "show", "tracemonkey.pdf", "--page", "99", "--out", str(out))
    assert missing_page.returncode == 1 and "no page 99" in missing_page.stderr

    broken = rag(data, "ingest", str(BROKEN))
    assert broken.returncode == 0, broken.stderr
    lines = broken.stdout.strip().splitlines()
    assert len(lines) == len([p for p in BROKEN.iterdir() if p.is_file()])
    assert all(line.split()[0] in {"indexed", "rejected"} for line in lines)
    assert "Traceback" not in broken.stderr

    cols = rag(data, "collections")
    assert cols.stdout.startswith("default")
    gone = rag(data, "delete", "tracemonkey.pdf")
    assert gone.returncode == 0 and "deleted tracemonkey.pdf" in gone.stdout
    missing = rag(data, "delete", "tracemonkey.pdf")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: No document") and "Traceback" not in missing.stderr
