"""CONTRIBUTING.md's recipe for a new layer type works as written: its code blocks, taken from the file, make a
type that the whole layer harness accepts (in a fresh process, so the registry here is untouched)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# what each place of the recipe already imports in the module it names
IMPORTS = {
    "cnnspec/layers/": "from typing import Literal\nfrom cnnspec.layers import LayerSpec\n"
    "from cnnspec.registry import register_layer\nfrom cnnspec.shapes import Shape\n",
    "backends/torch_backend/layers.py": "from torch import nn\n"
    "from cnnspec.backends.torch_backend.layers import BUILDERS, TorchLayer\n",
    "backends/keras_backend/layers.py": "from cnnspec.backends.keras_backend.layers import BUILDERS, from_spec\n",
    "backends/onnx_backend/graph.py": "from cnnspec.backends.onnx_backend.graph import BUILDERS\n",
}


def _recipe() -> tuple[str, str]:
    """(the plugin made of the recipe's code blocks, the new type's name)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Adding a layer type", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n# (\S+)[^\n]*\n(.*?)```", section, re.S)
    assert len(blocks) == 5, f"expected the class, three builders and the cases, found {len(blocks)} blocks"
    source, cases = [], None
    for place, code in blocks:
        if place.startswith("tests/layers/cases.py"):
            cases = code.strip().rstrip(",")
            continue
        prefix = next(imports for key, imports in IMPORTS.items() if place.startswith(key))
        source += [prefix, code]
    assert cases is not None
    source += ["from tests.layers.cases import LAYER_CASES", f"LAYER_CASES.update({{{cases}}})"]
    kind = re.search(r'type: Literal\["(\w+)"\]', blocks[0][1])
    assert kind is not None
    return "\n".join(source), kind.group(1)


def test_the_recipe_makes_a_type_the_whole_harness_accepts(tmp_path):
    pytest.importorskip("cnnspec.backends.torch_backend")
    pytest.importorskip("cnnspec.backends.keras_backend")
    pytest.importorskip("cnnspec.backends.onnx_backend")
    plugin, kind = _recipe()
    (tmp_path / "recipe_plugin.py").write_text(plugin)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "recipe_plugin", "-q", "-p", "no:cacheprovider", "-k", kind,
         "tests/layers", "tests/backends/test_layer_pairs.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
        env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    # every harness check ran on the new type's two cases, and it sits in the matrix of adjacent pairs
    assert passed >= 20 and "failed" not in summary and "error" not in summary, summary
