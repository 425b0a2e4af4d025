"""`make bench`: every benchmark, each in its own process, one results.md.

Each script prints a markdown fragment; this collects them with the machine line
and copies the result into the README between its two results.md markers, so
the README always quotes one consistent run (a test checks the two agree).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402

SCRIPTS = [
    ("`cnnspec validate` start-up", "bench_validate.py"),
    ("Training throughput, PyTorch", "bench_train_torch.py"),
    ("Training throughput, Keras", "bench_train_keras.py"),
    ("Branching networks: ResNet-20", "bench_graph.py"),
    ("Peak memory of training (and Keras bf16)", "bench_memory.py"),
    ("Scale: batch size and model size", "bench_scale.py"),
    ("Data-parallel training: processes and devices", "bench_distributed.py"),
    ("Data streamed from disk", "bench_data.py"),
    ("torch.compile", "bench_compile.py"),
    ("Inference and export", "bench_inference.py"),
]


README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results.md"
START, END = "<!-- results.md: start -->", "<!-- results.md: end -->"


def readme_block(results: str) -> str:
    """results.md as the README shows it: without its title, its sections one heading level down."""
    body = results.split("\n", 1)[1].strip()
    return "\n".join("#" + line if line.startswith("## ") else line for line in body.splitlines())


def quoted_block(readme: str) -> str:
    """What the README holds between the markers."""
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def update_readme(results: str) -> None:
    text = README.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    README.write_text(f"{before}{START}\n{readme_block(results)}\n{END}{after}")


def main() -> None:
    sections = [
        f"# Benchmark results\n\nMachine: {machine()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
        "Every ratio is measured against its baseline in the same run.\n"
    ]
    for title, script in SCRIPTS:
        print(f"== {title} ({script})", flush=True)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ},
        )
        body = (
            proc.stdout.strip()
            if proc.returncode == 0
            else f"FAILED (exit {proc.returncode}):\n```\n{proc.stderr[-2000:]}\n```"
        )
        print(body, flush=True)
        sections.append(f"## {title}\n\n{body}\n")
    results = "\n".join(sections)
    RESULTS.write_text(results)
    update_readme(results)
    print(f"wrote {RESULTS} and its copy in {README}")


if __name__ == "__main__":
    main()
