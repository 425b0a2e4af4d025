"""Start-up of the light commands (`validate`, `summary`, `schema`), each a fresh process, beside
`python -c pass`, the import of what they cannot do without (pydantic and PyYAML), and `import torch`.

Target (issue 26): each light command at most 0.25 s wall on a 2-core machine.
Prints a markdown table; run with the project's venv: `.venv/bin/python benchmarks/bench_validate.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 15
TARGET_S = 0.25


def wall(cmd: list[str]) -> float:
    """Median wall time of a fresh process, after one warm-up run (disk cache)."""
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    cli = str(Path(sys.executable).with_name("cnnspec"))
    commands = {
        "`cnnspec validate specs/mnist_cnn.yaml`": [cli, "validate", "specs/mnist_cnn.yaml"],
        "`cnnspec summary specs/resnet20_cifar.yaml`": [cli, "summary", "specs/resnet20_cifar.yaml"],
        "`cnnspec schema`": [cli, "schema"],
    }
    light = {name: wall(cmd) for name, cmd in commands.items()}
    floor = wall([sys.executable, "-c", "import pydantic, yaml; from pydantic import BaseModel, Field"])
    torch_import = wall([sys.executable, "-c", "import torch"])
    bare = wall([sys.executable, "-c", "pass"])
    print("| command | median wall time | target |\n|---|---|---|")
    for name, seconds in light.items():
        verdict = "met" if seconds <= TARGET_S else f"missed by {(seconds - TARGET_S) * 1000:.0f} ms"
        print(f"| {name} | {seconds * 1000:.0f} ms | <= {TARGET_S * 1000:.0f} ms: {verdict} |")
    print(f'| `python -c "import pydantic, yaml"` (what the spec language is built on) | {floor * 1000:.0f} ms | |')
    print(f'| `python -c "import torch"` | {torch_import * 1000:.0f} ms | |')
    print(f'| `python -c "pass"` (interpreter start) | {bare * 1000:.0f} ms | |')
    print(f"\nMedian of {REPEATS} fresh processes each, after one warm-up; `make bench` compiles the bytecode first.")


if __name__ == "__main__":
    main()
