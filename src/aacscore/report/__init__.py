"""Reports as Markdown plus self-contained HTML, built from typed blocks.

A report is a title and a sequence of blocks (headings, paragraphs, tables, figures). The same
blocks are rendered to Markdown (figures written as PNG files beside it) and to one HTML file
with the figures embedded as base64 PNG, so the HTML can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure


@dataclass(frozen=True)
class Heading:
    """A section heading (level 2 = ``##``)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text (no markup interpreted)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        for r in self.rows:
            if len(r) != len(self.header):
                raise ValueError(f"table row {r} has {len(r)} cells, header has {len(self.header)}")


@dataclass(frozen=True)
class Figure:
    """A figure as PNG bytes with a caption; build it with :func:`figure_from_matplotlib`."""

    png: bytes
    caption: str
    name: str


Block = Heading | Paragraph | Table | Figure


def figure_from_matplotlib(fig: MplFigure, name: str, caption: str, dpi: int = 120) -> Figure:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Figure(png=buf.getvalue(), caption=caption, name=name)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60em;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .6em;
text-align:left}th{background:#f0f0f0}caption{caption-side:bottom;font-size:.9em;color:#555}
figure{margin:1.5em 0}figcaption{font-size:.9em;color:#555}img{max-width:100%}
"""


@dataclass(frozen=True)
class Report:
    """A titled list of blocks that can be written as Markdown and HTML."""

    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    def to_markdown(self, figure_dir: str = ".") -> str:
        """Markdown text; figures are referenced as ``<figure_dir>/<name>.png``."""
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += ["#" * max(1, min(6, b.level)) + " " + b.text, ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
                out.append("|" + "|".join("---" for _ in b.header) + "|")
                out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
                if b.caption:
                    out += ["", f"*{b.caption}*"]
                out.append("")
            else:
                out += [f"![{b.caption}]({figure_dir}/{b.name}.png)", "", f"*{b.caption}*", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page (figures embedded as base64 PNG)."""
        e = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{e(self.title)}</h1>",
        ]
        for b in self.blocks:
            if isinstance(b, Heading):
                lv = max(1, min(6, b.level))
                parts.append(f"<h{lv}>{e(b.text)}</h{lv}>")
            elif isinstance(b, Paragraph):
                parts.append(f"<p>{e(b.text)}</p>")
            elif isinstance(b, Table):
                parts.append("<table>")
                if b.caption:
                    parts.append(f"<caption>{e(b.caption)}</caption>")
                parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in b.header) + "</tr>")
                for r in b.rows:
                    parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
                parts.append("</table>")
            else:
                data = base64.b64encode(b.png).decode("ascii")
                parts.append(
                    f'<figure><img alt="{e(b.caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{e(b.caption)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.md`` (figures in ``<stem>_figures/``) and ``<stem>.html``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        figs = [b for b in self.blocks if isinstance(b, Figure)]
        fig_dir_name = f"{stem}_figures"
        if figs:
            fig_dir = out / fig_dir_name
            fig_dir.mkdir(exist_ok=True)
            for f in figs:
                (fig_dir / f"{f.name}.png").write_bytes(f.png)
        md_path = out / f"{stem}.md"
        html_path = out / f"{stem}.html"
        md_path.write_text(self.to_markdown(fig_dir_name), encoding="utf-8")
        html_path.write_text(self.to_html(), encoding="utf-8")
        return md_path, html_path


def fmt_ci(
    value: float, low: float, high: float, digits: int = 3, label: str = "", level: float = 0.95
) -> str:
    """Format an estimate with its CI the way papers do: ``ICC 0.913 (95 % CI 0.890–0.931)``.

    When a limit is negative the limits are joined by "to" (``-1.670 to -0.920``) so the minus
    signs cannot be read as a dash.
    """
    sep = " to " if min(low, high) < 0 else "–"
    pct = f"{level * 100:g}"
    body = f"{value:.{digits}f} ({pct} % CI {low:.{digits}f}{sep}{high:.{digits}f})"
    return f"{label} {body}" if label else body


def fmt_p(p: float) -> str:
    """Format a P value: ``P < 0.001``, ``P = 0.034`` or ``P = n/a`` (NaN, infinite)."""
    if not math.isfinite(p):
        return "P = n/a"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def fmt_num(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, or ``n/a`` when it is None or not finite."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def blocks(*items: Block | Sequence[Block]) -> tuple[Block, ...]:
    """Flatten blocks and sequences of blocks into a tuple."""
    out: list[Block] = []
    for it in items:
        if isinstance(it, (Heading, Paragraph, Table, Figure)):
            out.append(it)
        else:
            out.extend(it)
    return tuple(out)


__all__ = [
    "Block",
    "Figure",
    "Heading",
    "Paragraph",
    "Report",
    "Table",
    "blocks",
    "figure_from_matplotlib",
    "fmt_ci",
    "fmt_num",
    "fmt_p",
]
