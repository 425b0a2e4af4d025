"""Jupyter display: the HTML and PNG representations contain what they claim."""

from __future__ import annotations

import io

import cnnspec
from cnnspec.data import preview_picture
from cnnspec.display import Picture, html_table
from tests.conftest import ROOT


def test_a_spec_summary_shows_its_parameter_total_and_every_layer():
    report = cnnspec.load_spec(ROOT / "specs" / "digits_cnn.yaml").summary()
    page = report._repr_html_()
    assert "43,050" in page and page.count("<tr>") == len(report.layers) + 2  # header, input, layers
    assert "conv2d_0" in page and "Conv2D" in page


def test_html_cells_are_escaped():
    assert "&lt;script&gt;" in html_table(["a"], [["<script>"]])


def test_a_data_preview_is_a_png_that_decodes():
    from PIL import Image

    picture = preview_picture("digits", samples=8)
    assert isinstance(picture, Picture) and picture._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(picture.png))
    image.load()
    assert image.size[0] > 100
