"""`cnnspec validate` wall time vs `python -c "import torch"`, each as a fresh process.

Targets (issue 2): validate under 0.3 s and under a quarter of the torch import.
Prints a markdown table; run with the project's venv: `.venv/bin/python benchmarks/bench_validate.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 9


def wall(cmd: list[str]) -> float:
    """Median wall time of a fresh process, after one warm-up run (disk cache)."""
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> list[tuple[str, float, str]]:
    cli = str(Path(sys.executable).with_name("cnnspec"))
    validate = wall([cli, "validate", "specs/mnist_cnn.yaml"])
    torch_import = wall([sys.executable, "-c", "import torch"])
    bare = wall([sys.executable, "-c", "pass"])
    rows = [
        ("`cnnspec validate specs/mnist_cnn.yaml`", validate, f"{validate / torch_import:.2f}x of torch import"),
        ('`python -c "import torch"`', torch_import, "baseline"),
        ('`python -c "pass"` (interpreter start)', bare, ""),
    ]
    print("| command | median wall time | ratio |\n|---|---|---|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds * 1000:.0f} ms | {ratio} |")
    return rows


if __name__ == "__main__":
    main()
