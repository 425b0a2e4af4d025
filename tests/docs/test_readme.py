"""The README quotes the committed benchmark results exactly (make bench rewrites both together)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_benchmark_section_is_results_md():
    run_all = _run_all()
    results = (ROOT / "benchmarks" / "results.md").read_text()
    assert run_all.quoted_block((ROOT / "README.md").read_text()) == run_all.readme_block(results)


def test_update_readme_replaces_only_the_quoted_block(tmp_path, monkeypatch):
    run_all = _run_all()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.START}\nold table\n{run_all.END}\noutro\n")
    monkeypatch.setattr(run_all, "README", readme)
    run_all.update_readme("# Benchmark results\n\nMachine: x.\n\n## Training\n\n| a |\n")
    assert readme.read_text() == f"intro\n{run_all.START}\nMachine: x.\n\n### Training\n\n| a |\n{run_all.END}\noutro\n"
