"""Plot retrieval quality against indexing speed for the configurations tried.

    .venv/bin/python benchmarks/plot.py [--configs benchmarks/configs.json]
        [--ingest benchmarks/results/ingest.json] [--out benchmarks/quality_vs_speed.png]

Left: each configuration's COVID-QA evaluation run (`benchmarks/sweep.py`): articles
indexed per second against answer_in_context@4000, searched hybrid, dense-only and
BM25-only on the same index. Right (when the ingest benchmark's JSON exists):
DocChat against the LangChain pipeline, pages per second over PDFs and articles.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
MODES = {"hybrid": ("tab:green", "o"), "dense": ("tab:blue", "s"), "bm25": ("tab:orange", "^")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=Path, default=ROOT / "benchmarks" / "configs.json")
    p.add_argument("--ingest", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.json")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "quality_vs_speed.png")
    args = p.parse_args()
    configs = json.loads(args.configs.read_text())
    ingest = json.loads(args.ingest.read_text()) if args.ingest.is_file() else None

    fig, axes = plt.subplots(1, 2 if ingest else 1, figsize=(12 if ingest else 7, 5))
    ax = axes[0] if ingest else axes
    speeds = {n: float(r["documents"]) / float(r["index_seconds"]) for n, r in configs.items()}
    lo, hi = min(speeds.values()), max(speeds.values())
    # Labels in a column in the empty middle, each with a line to its hybrid point.
    by_quality = sorted(configs, key=lambda n: -float(configs[n]["answer_in_context@4000"]))
    for name, r in configs.items():
        speed = speeds[name]
        points = {"hybrid": r["answer_in_context@4000"]}
        for mode, b in r.get("baselines", {}).items():
            points[mode] = b["answer_in_context@4000"]
        for mode, y in points.items():
            color, marker = MODES[mode]
            first = name == next(iter(configs))
            ax.scatter(speed, y, color=color, marker=marker, s=50, label=mode if first else None)
        rank = by_quality.index(name)
        ax.annotate(
            name,
            (speed, points["hybrid"]),
            xytext=(lo + 0.3 * (hi - lo), 0.715 - 0.018 * rank),
            textcoords="data",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6},
        )
    ax.axhline(0.75, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("COVID-QA articles indexed per second (higher is faster)")
    ax.set_ylabel("answer_in_context@4000")
    ax.set_title("DocChat configurations on COVID-QA")
    ax.legend(title="search", loc="center right")
    ax.grid(alpha=0.3)

    if ingest:
        ax2 = axes[1]
        pipelines = [
            ("docchat", "DocChat (defaults)", "tab:green"),
            ("langchain", "LangChain 1000/200, dense", "tab:red"),
        ]
        for key, label, color in pipelines:
            if key in ingest:
                r = ingest[key]
                ax2.scatter(r["pages_per_s"], r["answer_in_context@4000"], color=color, s=60)
                xy = (r["pages_per_s"], r["answer_in_context@4000"])
                ax2.annotate(label, xy, textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax2.set_xlabel("pages indexed per second, PDFs + articles (higher is faster)")
        ax2.set_ylabel("answer_in_context@4000")
        ax2.set_title("Ingest benchmark: DocChat vs LangChain")
        ax2.grid(alpha=0.3)
        ax2.set_xlim(left=0)
        ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
