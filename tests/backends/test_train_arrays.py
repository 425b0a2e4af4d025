"""Training and evaluating from arrays in memory gives what the same data gives through an .npz file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from cnnspec.errors import DataError
from tests.backends.test_torch_training import TINY

pytest.importorskip("cnnspec.backends.torch_backend")


def _arrays():
    rng = np.random.default_rng(0)
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 60)
    return x[:48], y[:48], x[48:], y[48:]


def _train(data, out, **kwargs):
    return cnnspec.train(TINY, "torch", data=data, out=out, epochs=2, precision="fp32", verbose=False, **kwargs)


def test_every_array_form_trains_as_the_same_npz_file_does(tmp_path):
    x, y, xt, yt = _arrays()
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    reference = _train(f"npz:{tmp_path / 'd.npz'}", tmp_path / "npz")
    forms = {
        "tuple": (x, y, xt, yt),
        "dict": {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt},
        "dataset": cnnspec.Dataset(x, y, xt, yt, "mine"),
        "one_hot": (x, np.eye(10)[y], xt, yt),
    }
    for name, form in forms.items():
        result = _train(form, tmp_path / name)
        assert result.history["loss"] == reference.history["loss"], name
        assert result.metrics["accuracy"] == reference.metrics["accuracy"], name
        assert json.loads((tmp_path / name / "run.json").read_text())["settings"]["data"] == "arrays"
        assert cnnspec.evaluate(tmp_path / name, data=form)["loss"] == pytest.approx(reference.metrics["loss"])


def test_validation_data_replaces_the_split_and_no_test_pair_means_no_test_metrics(tmp_path):
    x, y, xt, yt = _arrays()
    result = _train((x, y), tmp_path / "run", validation_data=(xt, yt))
    assert len(result.history["val_loss"]) == 2
    assert result.metrics["accuracy"] is None and result.metrics["n"] == 0
    with pytest.raises(DataError, match="trained on arrays"):
        cnnspec.evaluate(tmp_path / "run")


@pytest.mark.parametrize(
    "data,message",
    [
        ((np.zeros((4, 8)), np.zeros(4)), "images must be"),
        ((np.zeros((4, 7, 8, 1)), np.zeros(4, int)), "input_shape"),
        ((np.zeros((4, 8, 8, 1)), np.array([0, 1, 2, 12])), "labels must be 0..9"),
        ((np.full((4, 8, 8, 1), np.nan), np.zeros(4, int)), "NaN"),
        ((np.zeros((4, 8, 8, 1)), np.zeros(3, int)), "4 images but 3 labels"),
    ],
)
def test_bad_arrays_give_one_clear_error_and_write_nothing(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        _train(data, tmp_path / "run")
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_training_result_renders_its_curves_and_metrics():
    x, y, xt, yt = _arrays()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        page = _train((x, y, xt, yt), f"{folder}/run")._repr_html_()
    assert "accuracy" in page and 'src="data:image/png;base64,' in page
