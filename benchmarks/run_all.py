"""`make bench`: every benchmark, each in its own process, one results.md.

Each script prints a markdown fragment; this collects them under the machine line into
benchmarks/results.md, which the docs site shows as committed (docs/benchmarks.md includes it), so every
figure quoted comes from one run on one machine. ``--only SCRIPT`` reruns one section in place, after a change
that touches only what it measures, and the section says when and where it ran.
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
    ("Start-up: validate, summary, schema", "bench_validate.py"),
    ("Training throughput, PyTorch", "bench_train_torch.py"),
    ("Training throughput, Keras", "bench_train_keras.py"),
    ("Branching networks: ResNet-20 and MobileNetV2", "bench_graph.py"),
    ("Peak memory of training (and Keras bf16)", "bench_memory.py"),
    ("Scale: batch size and model size", "bench_scale.py"),
    ("Data-parallel training: processes and devices", "bench_distributed.py"),
    ("Data streamed from disk", "bench_data.py"),
    ("torch.compile", "bench_compile.py"),
    ("Inference and export", "bench_inference.py"),
    ("Parity bounds", "bench_parity.py"),
]


RESULTS = ROOT / "benchmarks" / "results.md"


def run(title: str, script: str) -> str:
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
    return body


def main() -> None:
    sections = [
        f"# Benchmark results\n\nMachine: {machine()}. Run: {now()}.\n"
        "Every ratio is measured against its baseline in the same run.\n"
    ]
    sections += [f"## {title}\n\n{run(title, script)}\n" for title, script in SCRIPTS]
    RESULTS.write_text("\n".join(sections))
    print(f"wrote {RESULTS}")


def rerun(script: str) -> None:
    """One section again, in place, saying when and on which machine (after a change that touches only it)."""
    title = dict((s, t) for t, s in SCRIPTS)[script]
    text = RESULTS.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end + 1
    body = run(title, script)
    note = f"Rerun on its own: {now()}, machine: {machine()}; the other sections are the run named at the top."
    RESULTS.write_text(f"{text[:start]}## {title}\n\n{note}\n\n{body}\n\n{text[end:]}")
    print(f"rewrote the {title!r} section of {RESULTS}")


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--only":  # python benchmarks/run_all.py --only bench_inference.py
        rerun(sys.argv[2])
    else:
        main()
