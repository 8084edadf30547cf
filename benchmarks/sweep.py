"""Run the COVID-QA evaluation over several configurations; collect the figures.

    .venv/bin/python benchmarks/sweep.py [--out benchmarks/configs.json] [--only NAME ...]

Each configuration is one `python -m rag eval covid-qa` run (indexing included, 3 to
8 minutes here), which also reports dense-only and BM25-only on the same index. The
results feed `benchmarks/plot.py`. Not part of `make bench`: it takes about half an
hour.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "covid-qa" / "covidQA.json"


def config(backend: str, size: int, overlap: int) -> dict[str, str]:
    return {"embedding_backend": backend, "chunk_tokens": str(size), "chunk_overlap": str(overlap)}


# name -> settings (passed as `--set NAME=VALUE`)
CONFIGS: dict[str, dict[str, str]] = {
    "torch 200/40": config("torch", 200, 40),
    "onnx-int8 200/40": config("onnx-int8", 200, 40),
    "onnx-int8 160/64": config("onnx-int8", 160, 64),
    "onnx-int8 128/24": config("onnx-int8", 128, 24),
    "onnx-int8 254/50": config("onnx-int8", 254, 50),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "configs.json")
    p.add_argument("--only", nargs="*", default=None, help="configuration names to run")
    args = p.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name, settings in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            cmd = [sys.executable, "-m", "rag", "eval", "covid-qa", "--data", str(DATA)]
            cmd += ["--json", str(out), "--quiet"]
            for k, v in settings.items():
                cmd += ["--set", f"{k}={v}"]
            print(f"{name}: {' '.join(cmd[1:])}", flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            results[name] = json.loads(out.read_text())
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
