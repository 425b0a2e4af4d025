"""Rich display in Jupyter: HTML tables and PNG pictures through IPython's ``_repr_*_`` hooks.

Nothing here imports IPython or Jupyter: an object that defines ``_repr_html_`` or
``_repr_png_`` is drawn by any notebook front end and printed as text elsewhere.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .files import atomic_write_bytes

DIVERGING = "background:#fde2e2;color:#9b1c1c;font-weight:bold"


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], styles: Sequence[str] = (), caption: str = ""
) -> str:
    """An HTML table; ``styles[i]`` (CSS) applies to row ``i``. Every cell is escaped."""
    style_of = list(styles)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        style = f' style="{style_of[index]}"' if index < len(style_of) and style_of[index] else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def png_img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


@dataclass(frozen=True)
class Picture:
    """A PNG figure: shown inline by Jupyter, saved with ``save``."""

    png: bytes
    title: str = ""

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | Path) -> Path:
        atomic_write_bytes(Path(path), self.png)
        return Path(path)

    def __repr__(self) -> str:
        return f"Picture({self.title!r}, {len(self.png):,} bytes of PNG)"
