"""Run the real ``cnnspec`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cnnspec(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """``python -m cnnspec ARGS``; returns the CompletedProcess (text output)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=full_env,
    )


def assert_clean_failure(result, code: int = 1) -> None:
    """Exit ``code`` with a message and no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.stderr.strip() or result.stdout.strip()
