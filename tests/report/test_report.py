from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

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
    assert "data:image/png;base64," in page
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
    assert isinstance(Figure(b"x", "c", "n"), Figure)
