"""The README is the front page and tells the truth: its console examples are what the commands printed
(docs/transcripts/, written by `make transcripts`), its links lead somewhere, it stays short, and the
benchmark results it points to are the committed run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TRANSCRIPTS = "\n".join(path.read_text() for path in sorted((ROOT / "docs" / "transcripts").glob("*.txt")))


def test_every_console_line_of_the_readme_was_printed_by_the_command():
    blocks = re.findall(r"```console\n(.*?)```", README, re.S)
    assert blocks
    printed = set(TRANSCRIPTS.splitlines())
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and line.strip() != "...":
                assert line in printed, f"README shows a line no transcript has: {line!r}"


def test_every_docs_page_includes_transcripts_that_exist():
    for page in (ROOT / "docs").rglob("*.md"):
        for included in re.findall(r'--8<-- "([^"]+)"', page.read_text()):
            assert (ROOT / included).is_file(), f"{page.name} includes {included}, which does not exist"


def test_the_readme_links_lead_to_files_in_the_repository():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    assert "shared/" not in README  # the reference lives in the repository (docs/)


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 300
    for must in ("make demo", "make test", "pip install", "```yaml"):
        assert must in README


def test_the_benchmark_results_name_their_machine():
    results = (ROOT / "benchmarks" / "results.md").read_text()
    assert results.startswith("# Benchmark results") and "Machine:" in results.splitlines()[2]
    assert "FAILED" not in results


def test_the_readme_compatibility_table_is_the_committed_measurement():
    """README's keras.applications table is docs/compatibility.md's, as `make compatibility` wrote both."""
    begin, end = "<!-- compatibility: begin (docs/compatibility.py) -->", "<!-- compatibility: end -->"
    table = README[README.index(begin) + len(begin) : README.index(end)].strip()
    assert table.count("\n") >= 15  # header, rule, one row per application
    assert table in (ROOT / "docs" / "compatibility.md").read_text()
