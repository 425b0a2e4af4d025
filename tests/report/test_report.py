"""Reports built from a real short training run, checked for content, not just for files."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

import cnnspec
from cnnspec.report import build_report
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli

pytest.importorskip("cnnspec.backends.torch_backend")

SPEC = {
    "name": "report_net",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "max_pool2d"},
        {"type": "conv2d", "filters": 5, "kernel_size": 3, "activation": "relu"},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
    "training": {"epochs": 3, "batch_size": 64},
    "class_names": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "run"
    cnnspec.train(SPEC, "torch", out=root, verbose=False)
    return root, build_report(root, image=7)


def test_confusion_matrix_counts_every_test_image(trained):
    _, report = trained
    assert report.confusion.sum() == 360
    assert sum(row["support"] for row in report.per_class) == 360
    assert [row["class"] for row in report.per_class][:2] == ["zero", "one"]  # the spec's class names


def test_prediction_titles_match_the_model(trained):
    root, report = trained
    from cnnspec.backends import torch_backend as tb

    run = cnnspec.load_run(root)
    spec, weights = run.spec, run.weights
    data = cnnspec.load_data("digits")
    predicted = tb.predict(tb.build(spec, weights), data.x_test[report.grid_indices]).argmax(1)
    expected = [
        f"{SPEC['class_names'][p]} ({SPEC['class_names'][t]})"
        for p, t in zip(predicted, data.y_test[report.grid_indices])
    ]
    assert report.grid_titles == expected
    assert all(
        predicted_wrong
        for predicted_wrong in (
            tb.predict(tb.build(spec, weights), data.x_test[report.mistake_indices]).argmax(1)
            != data.y_test[report.mistake_indices]
        )
    )


def test_feature_maps_match_each_conv_layers_filters(trained):
    _, report = trained
    assert report.feature_maps == {"conv2d_0": 6, "conv2d_2": 5}
    assert report.image_index == 7


def test_html_embeds_every_figure_and_pngs_are_written(trained):
    root, report = trained
    page = (root / "report.html").read_text()
    images = re.findall(r"<img id='([^']+)' alt='[^']*' src='data:image/png;base64,([^']+)'>", page)
    assert {key for key, _ in images} == set(report.figures)
    assert {"learning_curves", "confusion_matrix", "predictions", "filters", "feature_maps_conv2d_0"} <= set(
        report.figures
    )
    for key, data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert report.figures[key].read_bytes() == png  # the same figure as the PNG file
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "Per-class precision and recall" in page and "report_net" in page


def test_report_cli_and_bad_image_index(trained, tmp_path):
    root, _ = trained
    result = run_cli("report", root, "--output", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.html").exists()
    assert_clean_failure(run_cli("report", root, "--image", "9999"))


def test_class_names_must_match_the_output():
    with pytest.raises(cnnspec.SpecError, match="3 class names for an output of 10 classes"):
        cnnspec.load_spec({**SPEC, "class_names": ["a", "b", "c"]})


def test_data_preview(tmp_path):
    result = run_cli("data", "preview", "--data", "digits", "--output", tmp_path / "grid.png", "--samples", "12")
    assert result.returncode == 0, result.stderr
    assert "train (1437, 8, 8, 1)" in result.stdout and "values 0..1" in result.stdout
    counts = re.search(r"class counts \(train\): (.*)", result.stdout).group(1)
    assert sum(int(part.split(": ")[1]) for part in counts.split(", ")) == 1437
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_plot_draws_the_architecture(tmp_path):
    result = run_cli("summary", "specs/every_layer.yaml", "--plot", tmp_path / "arch.png")
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(tmp_path / "arch.png") as image:
        width, height = image.size
        assert height > width  # one box per layer, stacked
        assert np.asarray(image.convert("L")).std() > 10


def test_tensorboard_scalars_are_readable_by_tensorboard(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    result = cnnspec.train(SPEC, "torch", out=tmp_path / "run", epochs=2, tensorboard=tmp_path / "tb", verbose=False)
    events = accumulator.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(events.Tags()["scalars"])
    logged = [(e.step, e.value) for e in events.Scalars("loss")]
    assert [step for step, _ in logged] == [1, 2]
    np.testing.assert_allclose([v for _, v in logged], result.history["loss"], rtol=1e-6)


def test_tfrecord_framing_uses_crc32c():
    from cnnspec.tensorboard import crc32c

    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_renders_in_a_real_browser_with_no_broken_image(trained, tmp_path):
    root, report = trained
    page = (root / "report.html").read_text()
    probe = tmp_path / "probe.html"
    # after load, the title tells how many images failed to decode
    probe.write_text(
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => {"
            "const bad = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);"
            "document.title = 'images:' + document.images.length + ' broken:' + bad.length;"
            "});</script></body>",
        )
    )
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, *profile, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f"images:{len(report.figures)} broken:0" in dom, dom[:300]

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            *profile,
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            (root / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and figures, not a blank page


def test_broken_image_detection_can_fail(tmp_path):
    """The browser probe above really notices a broken image."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><head><title>x</title></head><body><img src='data:image/png;base64,AAAA'>"
        "<script>window.addEventListener('load', () => {const bad=[...document.images].filter("
        "i => !i.complete || i.naturalWidth === 0); document.title='images:' + document.images.length"
        " + ' broken:' + bad.length;});</script></body></html>"
    )
    dom = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'p'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "images:1 broken:1" in dom
