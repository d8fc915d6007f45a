import base64
import html
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from aacscore.report import (
    Figure,
    Heading,
    Paragraph,
    Report,
    Table,
    blocks,
    figure_from_matplotlib,
    fmt_ci,
    fmt_p,
)


def _report() -> Report:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    return Report(
        "Agreement <test>",
        blocks(
            Heading("Totals"),
            Paragraph("a | b & c"),
            [Table(("metric", "value"), (("MAE", "1.00"), ("x|y", "2")), caption="cap")],
            figure_from_matplotlib(fig, "scatter", "Scatter plot"),
        ),
    )


def test_write_markdown_and_self_contained_html(tmp_path: Path) -> None:
    md, html_path = _report().write(tmp_path, "validation")
    text = md.read_text()
    assert text.startswith("# Agreement <test>")
    assert "## Totals" in text
    assert "| x\\|y | 2 |" in text
    assert "![Scatter plot](validation_figures/scatter.png)" in text
    png = (tmp_path / "validation_figures" / "scatter.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    page = html_path.read_text()
    assert "Agreement &lt;test&gt;" in page
    # the matplotlib figure is embedded: the same PNG as the markdown's file, decodable
    assert [(alt, data) for alt, data in _embedded_pngs(page)] == [("Scatter plot", png)]
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.width > 50 and im.height > 50
    assert "a | b &amp; c" in page
    assert "<td>MAE</td>" in page


def test_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="cells"):
        Table(("a", "b"), (("1",),))


def test_formatting() -> None:
    assert fmt_ci(0.9134, 0.8901, 0.9312, label="ICC") == "ICC 0.913 (95 % CI 0.890–0.931)"
    assert fmt_ci(-1.6, -2.0, -0.9, digits=1) == "-1.6 (95 % CI -2.0 to -0.9)"
    assert fmt_ci(0.5, 0.4, 0.6, digits=1, level=0.9) == "0.5 (90 % CI 0.4–0.6)"
    assert fmt_p(0.0004) == "P < 0.001"
    assert fmt_p(0.0341) == "P = 0.034"
    assert fmt_p(float("nan")) == "P = n/a"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _embedded_pngs(page: str) -> list[tuple[str, bytes]]:
    """(alt text, decoded bytes) of every base64 PNG <img> in an HTML page."""
    found = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [(html.unescape(alt), base64.b64decode(data, validate=True)) for alt, data in found]


def test_figures_are_embedded_in_the_html_and_referenced_in_the_markdown(
    tmp_path: Path,
) -> None:
    # two figures with known pixels, so that each embedded image can be told apart
    a = np.zeros((3, 5, 3), np.uint8)
    a[1, 2] = (255, 0, 0)
    b = np.full((4, 2, 3), 200, np.uint8)
    b[3, 1] = (0, 0, 255)
    report = Report(
        "Figures",
        blocks(
            Figure(_png(a), "First & <one>", "first"),
            Paragraph("between"),
            Figure(_png(b), "Second", "second"),
        ),
    )
    md, html_path = report.write(tmp_path, "r")
    # markdown: each figure referenced, in order, and the referenced file holds its PNG
    text = md.read_text()
    refs = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", text)
    assert refs == [("First & <one>", "r_figures/first.png"), ("Second", "r_figures/second.png")]
    for (_, ref), arr in zip(refs, (a, b), strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / ref)), arr)
    # HTML: both embedded, in order, as decodable PNGs with the figures' pixels
    embedded = _embedded_pngs(html_path.read_text())
    assert [alt for alt, _ in embedded] == ["First & <one>", "Second"]
    for (_, data), arr in zip(embedded, (a, b), strict=True):
        assert data.startswith(b"\x89PNG")
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)
    assert "<figcaption>First &amp; &lt;one&gt;</figcaption>" in html_path.read_text()
    # a report without figures writes no figure folder
    Report("none", blocks(Paragraph("x"))).write(tmp_path, "plain")
    assert not (tmp_path / "plain_figures").exists()
