"""Safe loading: no pickle, eval or exec of user content, yaml.safe_load only, no torch.load.

Scans the package source; the one sanctioned pickle use (CIFAR-10's batches,
through a class-allow-list unpickler) is named here on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "cnnspec").rglob("*.py"), *(ROOT / "backends").rglob("*.py")])
FORBIDDEN = {
    r"(?<![.\w])eval\(": "eval",  # builtin eval, not model.eval()
    r"(?<![.\w])exec\(": "exec",
    r"yaml\.load\(": "yaml.load (use yaml.safe_load)",
    r"yaml\.(?:unsafe_load|full_load)\(": "unsafe YAML loader",
    r"torch\.load\(": "torch.load (pickle inside; use safetensors)",
    r"allow_pickle\s*=\s*True": "np.load(allow_pickle=True)",
    r"\bpickle\.loads?\(": "pickle.load",
    r"\bmarshal\.loads?\(": "marshal.load",
    r"\bshelve\.": "shelve",
    r"\bdill\b": "dill",
}
ALLOWED = {("cnnspec/_cifar.py", "pickle")}  # restricted Unpickler: numpy arrays only


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_loading(path):
    text = path.read_text()
    relative = str(path.relative_to(ROOT))
    for pattern, what in FORBIDDEN.items():
        for match in re.finditer(pattern, text):
            line = text[: match.start()].count("\n") + 1
            assert (relative, what.split()[0].split(".")[0]) in ALLOWED, f"{relative}:{line} uses {what}"


def test_the_scan_sees_the_package():
    assert any(p.name == "spec.py" for p in SOURCES) and any("torch_backend" in str(p) for p in SOURCES)


def test_cifar_unpickler_refuses_anything_but_arrays(tmp_path):
    import pickle

    from cnnspec._cifar import _batch
    from cnnspec.errors import DataError

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        _batch(path)


def test_safetensors_weights_cannot_carry_code(tmp_path):
    """A weights file is parsed as a JSON header plus raw numbers: a pickle payload is just a corrupt file."""
    import pickle

    from cnnspec.errors import WeightsError
    from cnnspec.weights import load_weights

    path = tmp_path / "weights.safetensors"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_weights(path)


def test_the_patterns_catch_what_they_should():
    sample = "x = eval(text)\nexec(code)\ncfg = yaml.load(f)\nw = torch.load(p)\nnp.load(p, allow_pickle=True)\n"
    found = {what for pattern, what in FORBIDDEN.items() if re.search(pattern, sample)}
    assert len(found) == 5
    assert not re.search(r"(?<![.\w])eval\(", "model.eval()\nretrieval(x)")
