"""Overlay picture (RGB array or PNG) of one scored film, for a reader to check the reading.

The picture is the film (downsampled to :data:`MAX_SIDE`; a JPEG 2000 film the scorer decoded
at a reduced level is decoded again at the level nearest the picture's scale) between two dark
strips that cover nothing of it: a header above (score, group, status with the flags or the
failure's reason, what was measured, the file name, "research use" and the version) and a
legend below (what was drawn).
On the film: the vertebral outlines (level colours, labels behind the bodies), the Kauppila
bounds (mid-disc lines, labels at their anterior ends), the aortic band's front edge and ends,
and the posterior/anterior wall strips coloured by grade, each grade written beside its strip on
the anterior side. Texts have a dark halo and are kept inside the film. Everything is drawn from
``result`` and ``result.stages`` alone, so a failed film shows what its stages found before the
failure.

The band's posterior edge is not drawn: it lies 8 mm inside the vertebral bodies, where a line
would hide the anterior cortex and the endplates a reader checks the bounds against; the body
outlines and the band's ends, drawn from the anterior vertebral margin forward, show where the
band begins.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from aacscore._files import atomic_write_bytes
from aacscore._version import __version__
from aacscore.io.inputs import OUTPUT_MARK, PNG_SOFTWARE_KEY
from aacscore.io.types import Radiograph
from aacscore.kauppila import LEVELS
from aacscore.results import Result, Status
from aacscore.vertebrae import Bound, level_bound_names

if TYPE_CHECKING:
    from aacscore.aorta.roi import Band

RGB = tuple[int, int, int]
Point = tuple[float, float]
Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, ``x1`` and ``y1`` exclusive."""
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

MAX_SIDE = 1400
"""Longest side of the film in the overlay picture in pixels (the film is downsampled to it)."""
MIN_WIDTH = 520
"""Narrowest picture: a narrower film is centred between dark margins so the header fits."""
BOUND_COLOUR: RGB = (255, 255, 255)
BAND_COLOUR: RGB = (0, 255, 255)
HALO: RGB = (0, 0, 0)
BACKGROUND: RGB = (24, 24, 28)
"""Colour of the header and legend strips."""
TEXT_COLOUR: RGB = (235, 235, 235)
DIM_COLOUR: RGB = (165, 165, 170)
STATUS_COLOURS: dict[Status, RGB] = {
    Status.OK: (90, 215, 90),
    Status.WARNING: (255, 185, 0),
    Status.FAILED: (255, 80, 80),
}
RESEARCH_USE = "research use - not a medical device"
BOUND_LENGTH_MM = 60.0
"""Drawn length of each bound anterior of the disc midpoint (when the scale is known)."""
BOUND_LENGTH_PX = 200.0
"""Drawn length of each bound in film pixels when the scale is unknown."""
LEVEL_COLOURS: dict[str, RGB] = {
    "T12": (150, 150, 255),
    "L1": (0, 200, 255),
    "L2": (0, 255, 120),
    "L3": (255, 230, 0),
    "L4": (255, 140, 0),
    "L5": (255, 60, 200),
    "S1": (180, 120, 255),
}
WALL_OFFSET_MM = {"posterior": 3.0, "anterior": 25.0}
"""Where the wall strips are drawn, in front of the anterior vertebral margin: typical positions
of the posterior and anterior aortic walls. The model grades the band, it does not trace the
walls, so the strips are a key to the grades, not a wall tracing."""
WALL_LETTERS = {"posterior": "P", "anterior": "A"}
_GLYPHS = str.maketrans({"—": "-", "–": "-", "→": "->", "≥": ">=", "≤": "<=", "\u00a0": " "})
"""Characters the default font lacks, and what is drawn instead."""


def grade_colour(grade: float) -> RGB:
    """Green (0) -> yellow (1.5) -> red (3)."""
    t = float(np.clip(grade / 3.0, 0.0, 1.0))
    if t < 0.5:
        return (int(510 * t), 200, 0)
    return (255, int(200 * (2 - 2 * t)), 0)


# -------------------------------------------------------------------------------------------
# Header text
# -------------------------------------------------------------------------------------------


class LineKind(str, Enum):
    """How a header line is set and fitted to the picture's width."""

    TITLE = "title"
    """Larger type, wrapped."""
    TEXT = "text"
    """Wrapped."""
    PATH = "path"
    """One line, shortened in the middle (the file's name is kept)."""
    SMALL = "small"
    """Smaller type, wrapped."""


@dataclass(frozen=True)
class HeaderLine:
    """One logical line of the header; it wraps at ``breaks`` (then at spaces) when too wide."""

    text: str
    colour: RGB
    kind: LineKind = LineKind.TEXT
    breaks: str = " "


def header_lines(result: Result) -> tuple[HeaderLine, ...]:
    """The header's lines: the reading (or the failure's code, message and what was found),
    the status with the flags, what else was measured, the file and the research-use line
    with the version that scored the film."""
    st = result.stages
    colour = STATUS_COLOURS[result.status]
    lines: list[HeaderLine] = []
    if result.status is Status.FAILED:
        lines.append(HeaderLine(f"FAILED: {result.error_code}", colour, LineKind.TITLE))
        message = _strip_prefix(result.error, result.file) or "(no message)"
        lines.append(HeaderLine(message, TEXT_COLOUR))
        found = _found_before_failure(result)
        lines.append(
            HeaderLine(
                f"drawn: the {found} found before the failure"
                if found
                else "nothing drawn: the film failed before any vertebrae were returned",
                DIM_COLOUR,
            )
        )
    else:
        lines.append(HeaderLine(_reading(result), TEXT_COLOUR, LineKind.TITLE, breaks="   "))
        if result.low_confidence:
            lines.append(
                HeaderLine(
                    "low confidence: the 95 % interval of AAC-24 crosses a group cut-off",
                    STATUS_COLOURS[Status.WARNING],
                )
            )
        flags = f": {', '.join(result.qc_flags)}" if result.qc_flags else ""
        lines.append(HeaderLine(f"status {result.status.value}{flags}", colour, breaks=", "))
    measured = _measured(result)
    if measured:
        lines.append(HeaderLine(measured, DIM_COLOUR, breaks=" · "))
    lines.append(HeaderLine(f"file: {result.file}", TEXT_COLOUR, LineKind.PATH))
    version = st.aacscore_version if st is not None else __version__
    lines.append(HeaderLine(f"{RESEARCH_USE} · aacscore {version}", DIM_COLOUR, LineKind.SMALL))
    return tuple(lines)


def _reading(result: Result) -> str:
    parts: list[str] = []
    if result.aac24 is not None:
        sd = f" ± {result.aac24_sd:.1f}" if result.aac24_sd is not None else ""
        parts.append(f"AAC-24 {result.aac24:.1f}{sd}")
    if result.aac8 is not None:
        parts.append(f"AAC-8 {result.aac8:.1f}")
    if result.group is not None:
        parts.append(f"group {result.group}")
    return "   ".join(parts) or "no score"


def _measured(result: Result) -> str:
    """Anterior side, scale, familiarity and the view classifier's reading, where known."""
    st = result.stages
    spine = st.spine if st is not None else None
    band = st.band if st is not None else None
    parts: list[str] = []
    side = result.orientation or (str(spine.anterior_side) if spine is not None else None)
    if side:
        parts.append(f"anterior {side}")
    spacing = result.spacing_mm
    if spacing is None and band is not None:
        spacing = float(np.mean(band.spacing_mm))
    if spacing is not None:
        estimated = (band is not None and band.scale_estimated) or (
            "spacing_unknown" in result.qc_flags
        )
        how = " (estimated from the vertebrae)" if estimated else ""
        parts.append(f"{spacing:.3f} mm/px{how}")
    quality = st.quality if st is not None else None
    if quality is not None:
        parts.append(f"quality {quality.value:.2f}" + (" (low)" if quality.low else ""))
    elif result.quality is not None:
        parts.append(f"quality {result.quality:.2f}")
    view = st.view if st is not None else None
    if view is not None:
        parts.append(f"p(lateral lumbar) {view.p_lateral:.2f}")
    return " · ".join(parts)


def _found_before_failure(result: Result) -> str:
    st = result.stages
    if st is None:
        return ""
    found = []
    if st.spine is not None and st.spine.vertebrae:
        found.append("vertebrae")
    if st.spine is not None and st.spine.bounds:
        found.append("bounds")
    if st.band is not None:
        found.append("band")
    return (
        ", ".join(found[:-1]) + (" and " if len(found) > 1 else "") + (found[-1] if found else "")
    )


def _strip_prefix(message: str, name: str) -> str:
    """The message without a leading ``"<file name>: "`` (the header names the file)."""
    prefix = f"{name}: "
    return message[len(prefix) :] if name and message.startswith(prefix) else message


def wrap_text(text: str, font: Font, width: float, breaks: str = " ") -> list[str]:
    """``text`` broken at ``breaks`` into lines no wider than ``width`` pixels; a part wider
    than that is broken at spaces, a word wider than that inside. A ``breaks`` with a mark
    (``", "``) keeps the mark at the end of the broken line."""
    mark = breaks.rstrip() if breaks[:1] != " " else ""
    lines: list[str] = []
    current = ""
    for part in text.split(breaks):
        candidate = f"{current}{breaks}{part}" if current else part
        if font.getlength(candidate + mark) <= width:
            current = candidate
            continue
        if current:
            lines.append(current + mark)
        current = part
        if font.getlength(current) > width:
            if breaks != " ":
                sub = wrap_text(current, font, width)
            else:
                sub = []
                while font.getlength(current) > width and len(current) > 1:
                    cut = _longest_prefix(current, font, width)
                    sub.append(current[:cut])
                    current = current[cut:]
                sub.append(current)
            lines += sub[:-1]
            current = sub[-1]
    lines.append(current)
    return lines


def _longest_prefix(text: str, font: Font, width: float) -> int:
    n = 1
    while n < len(text) and font.getlength(text[: n + 1]) <= width:
        n += 1
    return n


def shorten_middle(text: str, font: Font, width: float) -> str:
    """``text`` fitted to ``width`` pixels: unchanged if it fits; else the leading folders of
    the path after the first ``": "`` replaced by ``…`` (``file: …/parent/name.dcm``), then the
    middle of the name itself."""
    if font.getlength(text) <= width:
        return text
    label, sep, path = text.partition(": ")
    if not sep:
        label, path = "", text
    head = f"{label}{sep}"
    parts = path.replace("\\", "/").split("/")
    for i in range(1, len(parts)):
        candidate = head + "…/" + "/".join(parts[i:])
        if font.getlength(candidate) <= width:
            return candidate
    name = parts[-1]
    best = head + "…"
    lo, hi = 1, len(name) - 1
    while lo <= hi:  # the most characters of the name kept around the ellipsis
        keep = (lo + hi) // 2
        front = (keep + 1) // 2
        candidate = f"{head}{name[:front]}…{name[len(name) - (keep - front) :]}"
        if font.getlength(candidate) <= width:
            best, lo = candidate, keep + 1
        else:
            hi = keep - 1
    return best


# -------------------------------------------------------------------------------------------
# Label placement
# -------------------------------------------------------------------------------------------


def place_box(
    size: tuple[int, int], point: Point, direction: Point, area: Box, gap: float = 0.0
) -> Box:
    """A box of ``size`` (width, height) beside ``point`` on the side ``direction`` points to:
    its centre on the ray from ``point`` along ``direction``, its edge ``gap`` from ``point``;
    then moved the least to lie inside ``area``."""
    w, h = size
    norm = math.hypot(direction[0], direction[1]) or 1.0
    ux, uy = direction[0] / norm, direction[1] / norm
    # distance along the ray from the box's centre to its edge
    reach = min(
        (w / 2) / abs(ux) if abs(ux) > 1e-9 else math.inf,
        (h / 2) / abs(uy) if abs(uy) > 1e-9 else math.inf,
    )
    cx = point[0] + (gap + reach) * ux
    cy = point[1] + (gap + reach) * uy
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    return clamp_box((x0, y0, x0 + w, y0 + h), area)


def clamp_box(box: Box, area: Box) -> Box:
    """``box`` moved the least to lie inside ``area`` (its top-left corner kept inside when it
    is larger than the area)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    nx = max(area[0], min(x0, area[2] - w))
    ny = max(area[1], min(y0, area[3] - h))
    return (nx, ny, nx + w, ny + h)


def segment_hits_box(a: Point, b: Point, box: Box, pad: float = 0.0) -> bool:
    """Whether the segment ``a``-``b`` passes within ``pad`` of ``box`` (sampled every 2 px)."""
    n = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / 2) + 2)
    t = np.linspace(0.0, 1.0, n)
    x = a[0] + t * (b[0] - a[0])
    y = a[1] + t * (b[1] - a[1])
    inside = (x >= box[0] - pad) & (x < box[2] + pad) & (y >= box[1] - pad) & (y < box[3] + pad)
    return bool(inside.any())


# -------------------------------------------------------------------------------------------
# Drawing
# -------------------------------------------------------------------------------------------


class LabelRole(str, Enum):
    """What a drawn text is."""

    VERTEBRA = "vertebra"
    BOUND = "bound"
    GRADE = "grade"
    WALL = "wall"
    HEADER = "header"
    LEGEND = "legend"


class Drawn(str, Enum):
    """What was drawn on the film (the legend explains exactly these)."""

    VERTEBRAE = "vertebrae"
    BOUNDS = "bounds"
    EXTRAPOLATED_BOUNDS = "extrapolated_bounds"
    BAND = "band"
    WALL_STRIPS = "wall_strips"


@dataclass(frozen=True)
class Label:
    """A text drawn on the picture and its box (picture pixels, halo included)."""

    text: str
    box: Box
    role: LabelRole


@dataclass(frozen=True)
class Overlay:
    """The overlay picture, where the film lies in it, what was drawn and the texts' boxes."""

    rgb: npt.NDArray[np.uint8]
    film_box: Box
    """Where the (downsampled) film lies in the picture."""
    scale: float
    """Picture pixels per film pixel (the film's own pixels, at full resolution)."""
    drawn: frozenset[Drawn]
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class _Style:
    font: Font
    title_font: Font
    small_font: Font
    size: int
    line: int
    strip: int
    halo: int
    pad: int

    @classmethod
    def for_picture(cls, width: int, height: int) -> _Style:
        """Type and line sizes from the film's size in the picture: 17 px type on a 719 x 1200
        film, 16 px on a 2874 x 1168 one (downsampled to 1400 x 569), 13-30 px."""
        size = int(np.clip(round(math.sqrt(width * height) / 55), 13, 30))
        return cls(
            font=_font(size),
            title_font=_font(round(size * 1.3)),
            small_font=_font(max(12, round(size * 0.85))),
            size=size,
            line=max(2, round(size / 9)),
            strip=max(4, round(size * 0.35)),
            halo=max(2, round(size / 7)),
            pad=max(6, size // 2),
        )


@functools.lru_cache(maxsize=32)
def _font(size: int) -> Font:
    """Pillow's default font (Aileron, FreeType) at ``size`` px."""
    return ImageFont.load_default(size=size)


class _Painter:
    """Haloed lines and texts on one image; records the texts' boxes in picture pixels
    (``origin`` is where the image lies in the picture)."""

    def __init__(self, img: Image.Image, style: _Style, origin: tuple[int, int] = (0, 0)) -> None:
        self.img = img
        self.draw = ImageDraw.Draw(img)
        self.style = style
        self.origin = origin
        self.labels: list[Label] = []

    @property
    def area(self) -> Box:
        return (0, 0, self.img.width, self.img.height)

    def polyline(self, pts: Sequence[Point], colour: RGB, width: int, dashed: bool = False) -> None:
        segments = _dash(pts, 3.0 * width) if dashed else [list(pts)]
        halo = max(1, self.style.halo // 2)
        for seg in segments:
            self.draw.line(seg, fill=HALO, width=width + 2 * halo, joint="curve")
        for seg in segments:
            self.draw.line(seg, fill=colour, width=width, joint="curve")

    def text_size(self, text: str, font: Font | None = None) -> tuple[int, int]:
        f = font or self.style.font
        x0, y0, x1, y1 = f.getbbox(text.translate(_GLYPHS), stroke_width=self.style.halo,
                                   anchor="lt")  # fmt: skip
        return (math.ceil(x1 - x0), math.ceil(y1 - y0))

    def text(
        self, box: Box, text: str, colour: RGB, role: LabelRole, font: Font | None = None
    ) -> Label:
        """Draw ``text`` with its halo filling ``box`` (from :meth:`text_size`)."""
        f = font or self.style.font
        shown = text.translate(_GLYPHS)
        x0, y0, _, _ = f.getbbox(shown, stroke_width=self.style.halo, anchor="lt")
        self.draw.text(
            (box[0] - x0, box[1] - y0), shown, fill=colour, font=f, anchor="lt",
            stroke_width=self.style.halo, stroke_fill=HALO,
        )  # fmt: skip
        ox, oy = self.origin
        label = Label(text, (box[0] + ox, box[1] + oy, box[2] + ox, box[3] + oy), role)
        self.labels.append(label)
        return label

    def text_beside(
        self, text: str, point: Point, direction: Point, colour: RGB, role: LabelRole,
        gap: float, avoid: Sequence[tuple[Point, Point]] = (),
    ) -> Label:  # fmt: skip
        """``text`` beside ``point`` towards ``direction`` (else the opposite side when that
        one keeps clear of the ``avoid`` segments), inside the image."""
        size = self.text_size(text)
        box = place_box(size, point, direction, self.area, gap)
        if any(segment_hits_box(a, b, box, self.style.halo) for a, b in avoid):
            other = place_box(size, point, (-direction[0], -direction[1]), self.area, gap)
            if not any(segment_hits_box(a, b, other, self.style.halo) for a, b in avoid):
                box = other
        return self.text(box, text, colour, role)


def _dash(pts: Sequence[Point], step: float) -> list[list[Point]]:
    """The polyline cut into dashes ``step`` long with ``step`` gaps."""
    out: list[list[Point]] = []
    for a, b in itertools.pairwise(pts):
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        d = 0.0
        while d < length:
            t0, t1 = d / length, min(1.0, (d + step) / length)
            out.append([(a[0] + t0 * (b[0] - a[0]), a[1] + t0 * (b[1] - a[1])),
                        (a[0] + t1 * (b[0] - a[0]), a[1] + t1 * (b[1] - a[1]))])  # fmt: skip
            d += 2 * step
    return out


def overlay_image(rad: Radiograph, result: Result) -> npt.NDArray[np.uint8]:
    """The result drawn on a downsampled copy of the film, the header above it and the legend
    below: (rows, cols, 3) RGB uint8 (:func:`render_overlay`)."""
    return render_overlay(rad, result).rgb


def render_overlay(rad: Radiograph, result: Result) -> Overlay:
    """The overlay picture of a result (module docstring), with the film's place in it, what
    was drawn and the boxes of its texts."""
    rows, cols = rad.film_shape
    scale = min(1.0, MAX_SIDE / max(rows, cols))
    px = np.clip(_film_pixels(rad, scale), 0.0, 1.0)
    film = Image.fromarray((px * 255).astype(np.uint8))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if film.size != size:
        film = film.resize(size, Image.BILINEAR, reducing_gap=2.0)
    film = film.convert("RGB")
    style = _Style.for_picture(film.width, film.height)
    width = max(film.width, MIN_WIDTH)
    header = _header_image(result, style, width)
    fx, fy = (width - film.width) // 2, header.height
    painter = _Painter(film, style, (fx, fy))
    drawn = _draw_findings(painter, result, scale)
    legend = _legend_image(drawn, style, width, fy + film.height)
    canvas = Image.new("RGB", (width, fy + film.height + legend.height), BACKGROUND)
    canvas.paste(header.image, (0, 0))
    canvas.paste(film, (fx, fy))
    if legend.height:
        canvas.paste(legend.image, (0, fy + film.height))
    return Overlay(
        rgb=np.asarray(canvas, dtype=np.uint8),
        film_box=(fx, fy, fx + film.width, fy + film.height),
        scale=scale,
        drawn=drawn,
        labels=(*header.labels, *painter.labels, *legend.labels),
    )


def _film_pixels(rad: Radiograph, scale: float) -> npt.NDArray[np.float32]:
    """The film's pixels for a picture of ``scale`` picture pixels per film pixel: those of
    ``rad``, or for a JPEG 2000 film decoded at a reduced level
    (:attr:`~aacscore.io.Radiograph.reduction`) the level nearest the picture's spacing (at
    most sqrt(2) times coarser; :meth:`~aacscore.io.Radiograph.region`, the reduced pixels
    when that decode fails). Geometry is drawn in the film's own pixels either way."""
    spacing = rad.film_spacing_mm
    if not rad.reduction or spacing is None:
        return rad.pixels
    rows, cols = rad.film_shape
    return rad.region((0, rows, 0, cols), max(spacing) / scale * math.sqrt(2)).pixels


@dataclass(frozen=True)
class _Strip:
    image: Image.Image
    labels: tuple[Label, ...]

    @property
    def height(self) -> int:
        return self.image.height


def _header_image(result: Result, style: _Style, width: int) -> _Strip:
    pad = style.pad
    fonts = {
        LineKind.TITLE: style.title_font,
        LineKind.TEXT: style.font,
        LineKind.PATH: style.font,
        LineKind.SMALL: style.small_font,
    }
    avail = width - 2 * pad - 2 * style.halo
    rows: list[tuple[str, RGB, Font]] = []
    for line in header_lines(result):
        font = fonts[line.kind]
        text = line.text.translate(_GLYPHS)
        if line.kind is LineKind.PATH:
            rows.append((shorten_middle(text, font, avail), line.colour, font))
        else:
            rows += [(t, line.colour, font) for t in wrap_text(text, font, avail, line.breaks)]
    steps = [round(_font_size(f) * 1.3) for _, _, f in rows]
    img = Image.new("RGB", (width, 2 * pad + sum(steps)), BACKGROUND)
    painter = _Painter(img, style)
    y = pad
    for (text, colour, font), step in zip(rows, steps, strict=True):
        w, h = painter.text_size(text, font)
        painter.text((pad, y, pad + w, y + h), text, colour, LabelRole.HEADER, font)
        y += step
    return _Strip(img, tuple(painter.labels))


def _font_size(font: Font) -> float:
    return float(getattr(font, "size", 12))


def _draw_findings(p: _Painter, result: Result, scale: float) -> frozenset[Drawn]:
    """Vertebrae, bounds, band and wall strips of ``result.stages`` on the film image."""
    st = result.stages
    spine = st.spine if st is not None else None
    band = st.band if st is not None else None
    drawn: set[Drawn] = set()
    style = p.style

    def s(q: npt.ArrayLike) -> Point:
        a = np.asarray(q, dtype=float)
        return (float(a[0]) * scale, float(a[1]) * scale)

    vertebrae = spine.vertebrae if spine is not None else {}
    bounds = spine.bounds if spine is not None else {}
    for name, v in vertebrae.items():
        quad = [s(c) for c in v.corners]
        p.polyline([*quad, quad[0]], LEVEL_COLOURS.get(name, TEXT_COLOUR), style.line)
        drawn.add(Drawn.VERTEBRAE)
    if band is not None:
        for edge in _band_edges(band):
            p.polyline([s(q) for q in edge], BAND_COLOUR, style.line)
        drawn.add(Drawn.BAND)
    mm_per_px = _mm_per_px(result)
    length = BOUND_LENGTH_MM / mm_per_px if mm_per_px else BOUND_LENGTH_PX
    for b in bounds.values():
        p.polyline([s(b.point), s(b.at(length))], BOUND_COLOUR, style.line, dashed=b.extrapolated)
        drawn.add(Drawn.EXTRAPOLATED_BOUNDS if b.extrapolated else Drawn.BOUNDS)
    strips = _wall_strips(result, bounds, mm_per_px)
    for ws in strips:
        p.polyline([s(ws.top), s(ws.bottom)], grade_colour(ws.grade), style.strip)
        drawn.add(Drawn.WALL_STRIPS)
    # texts after all lines, so that no line crosses a text
    gap = style.pad / 2
    for name, v in vertebrae.items():
        posterior = _vec(v.posterior_midpoint - v.anterior_midpoint)
        colour = LEVEL_COLOURS.get(name, TEXT_COLOUR)
        p.text_beside(name, s(v.posterior_midpoint), posterior, colour, LabelRole.VERTEBRA, gap)
    for b in bounds.values():
        text = b.name + (" (extrapolated)" if b.extrapolated else "")
        p.text_beside(text, s(b.at(length)), _vec(b.direction), BOUND_COLOUR, LabelRole.BOUND, gap)
    segments = [(s(ws.top), s(ws.bottom)) for ws in strips]
    for ws in strips:
        up, lo = (bounds[n] for n in level_bound_names(ws.level))
        mid = s((np.asarray(ws.top) + np.asarray(ws.bottom)) / 2)
        p.text_beside(
            f"{ws.grade:.1f}", mid, _vec(up.direction + lo.direction), grade_colour(ws.grade),
            LabelRole.GRADE, style.strip / 2 + style.halo, avoid=segments,
        )  # fmt: skip
        if ws.level == LEVELS[0]:  # the wall's letter above the first level's strip
            cranial = _vec(np.asarray(ws.top) - np.asarray(ws.bottom))
            letter = WALL_LETTERS[ws.wall]
            p.text_beside(letter, s(ws.top), cranial, TEXT_COLOUR, LabelRole.WALL, style.halo)
    return frozenset(drawn)


def _vec(v: npt.ArrayLike) -> Point:
    a = np.asarray(v, dtype=float)
    return (float(a[0]), float(a[1]))


def _mm_per_px(result: Result) -> float | None:
    """Millimetres per film pixel: the band's scale (measured or estimated), else the spine's."""
    st = result.stages
    if st is None:
        return None
    if st.band is not None:
        return float(np.mean(st.band.spacing_mm))
    if st.spine is not None and st.spine.spacing_mm is not None:
        return float(np.mean(st.spine.spacing_mm))
    return None


def _band_edges(band: Band) -> list[list[Point]]:
    """Film polylines of the band's anterior edge and of its cranial and caudal ends from the
    anterior vertebral margin (column offset 0 mm) forward."""
    g = band.geometry
    n_rows, n_cols = g.shape
    c_margin = max(0.0, g.behind_mm / g.mm_per_col - 0.5)
    front = float(n_cols - 1)
    rows = np.arange(n_rows, dtype=np.float64)
    cols = np.linspace(c_margin, front, 8)
    edges = []
    for rr, cc in (
        (np.zeros_like(cols), cols),
        (rows, np.full_like(rows, front)),
        (np.full_like(cols, n_rows - 1.0), cols[::-1]),
    ):
        x, y = band.to_film(rr, cc)
        edges.append([(float(a), float(b)) for a, b in zip(x, y, strict=True)])
    return edges


@dataclass(frozen=True)
class _WallStrip:
    """The strip of one graded segment: film end points on its cranial and caudal bounds."""

    level: str
    wall: str
    grade: float
    top: Point
    bottom: Point


def _wall_strips(
    result: Result, bounds: dict[str, Bound], mm_per_px: float | None
) -> list[_WallStrip]:
    """The strips of the graded segments (film pixels; none without grades or a scale)."""
    out: list[_WallStrip] = []
    if result.grades is None or not mm_per_px:
        return out
    for lv in LEVELS:
        up_name, lo_name = level_bound_names(lv)
        up, lo = bounds.get(up_name), bounds.get(lo_name)
        if up is None or lo is None:
            continue
        for wall, off in WALL_OFFSET_MM.items():
            grade = result.grades.get(f"{lv}_{wall}")
            if grade is None or not math.isfinite(float(grade)):
                continue
            t = off / mm_per_px
            top = _vec(up.anterior + t * up.direction)
            bottom = _vec(lo.anterior + t * lo.direction)
            out.append(_WallStrip(lv, wall, float(grade), top, bottom))
    return out


# -------------------------------------------------------------------------------------------
# Legend
# -------------------------------------------------------------------------------------------


class _Swatch(str, Enum):
    LINE = "line"
    DASHED = "dashed"
    STRIP = "strip"
    RAMP = "ramp"


@dataclass(frozen=True)
class _Piece:
    """A legend piece: a text, or a swatch drawn in ``colour``."""

    text: str = ""
    colour: RGB = TEXT_COLOUR
    swatch: _Swatch | None = None


def legend_entries(drawn: frozenset[Drawn]) -> tuple[str, ...]:
    """The legend's explanations of what was drawn (the texts of :func:`_legend_items`)."""
    return tuple(
        " ".join(pc.text for pc in item if pc.swatch is None and pc.text)
        for item in _legend_items(drawn)
    )


def _legend_items(drawn: frozenset[Drawn]) -> list[list[_Piece]]:
    items: list[list[_Piece]] = []
    if Drawn.VERTEBRAE in drawn:
        items.append(
            [_Piece("vertebrae", DIM_COLOUR), *(_Piece(n, c) for n, c in LEVEL_COLOURS.items())]
        )
    if Drawn.BOUNDS in drawn:
        items.append([_Piece(colour=BOUND_COLOUR, swatch=_Swatch.LINE),
                      _Piece("Kauppila bounds (mid-disc lines)")])  # fmt: skip
    if Drawn.EXTRAPOLATED_BOUNDS in drawn:
        items.append([_Piece(colour=BOUND_COLOUR, swatch=_Swatch.DASHED),
                      _Piece("extrapolated bound (T12 or L5 unusable)")])  # fmt: skip
    if Drawn.BAND in drawn:
        items.append([_Piece(colour=BAND_COLOUR, swatch=_Swatch.LINE),
                      _Piece("aortic band: front edge and ends")])  # fmt: skip
    if Drawn.WALL_STRIPS in drawn:
        grey = (200, 200, 200)
        items.append([_Piece("grade", DIM_COLOUR), _Piece(swatch=_Swatch.RAMP)])
        items.append([
            _Piece(colour=grey, swatch=_Swatch.STRIP), _Piece(WALL_LETTERS["posterior"]),
            _Piece(colour=grey, swatch=_Swatch.STRIP), _Piece(WALL_LETTERS["anterior"]),
            _Piece("posterior / anterior wall strips at typical wall positions, a key to "
                   "the grades, not a tracing"),
        ])  # fmt: skip
    return items


def _legend_image(drawn: frozenset[Drawn], style: _Style, width: int, top: int) -> _Strip:
    """The legend strip (height 0 when nothing was drawn); ``top`` is its row in the picture."""
    items = _legend_items(drawn)
    if not items:
        return _Strip(Image.new("RGB", (width, 0)), ())
    font = style.small_font
    fs = _font_size(font)
    pad = style.pad
    probe = _Painter(Image.new("RGB", (1, 1)), style)
    swatch_w = {
        _Swatch.LINE: round(2.2 * fs),
        _Swatch.DASHED: round(2.2 * fs),
        _Swatch.STRIP: 2 * style.strip,
        _Swatch.RAMP: round(7 * fs),
    }

    def piece_width(pc: _Piece) -> int:
        return swatch_w[pc.swatch] if pc.swatch else probe.text_size(pc.text, font)[0]

    inner, between = round(0.3 * fs), round(1.6 * fs)
    right = width - pad
    placed: list[tuple[_Piece, int, int]] = []  # piece, x, row
    x, row = pad, 0
    for item in items:
        item_w = sum(piece_width(pc) for pc in item) + inner * (len(item) - 1)
        if x > pad and x + between + item_w > right:
            x, row = pad, row + 1
        if x > pad:
            x += between
        for pc in item:
            if pc.swatch is None and x + piece_width(pc) > right:  # wrap the text
                for i, text in enumerate(wrap_text(pc.text, font, max(1, right - x))):
                    if i:
                        x, row = pad, row + 1
                    placed.append((_Piece(text, pc.colour), x, row))
                    x += probe.text_size(text, font)[0] + inner
                continue
            if x > pad and x + piece_width(pc) > right:
                x, row = pad, row + 1
            placed.append((pc, x, row))
            x += piece_width(pc) + inner
        x -= inner
    step = round(fs * 1.9)
    img = Image.new("RGB", (width, pad + (row + 1) * step + pad // 2), BACKGROUND)
    painter = _Painter(img, style, (0, top))
    for pc, px_, r in placed:
        y_mid = pad + r * step + step / 2
        w = piece_width(pc)
        if pc.swatch is None:
            h = probe.text_size(pc.text, font)[1]
            y0 = round(y_mid - h / 2)
            painter.text((px_, y0, px_ + w, y0 + h), pc.text, pc.colour, LabelRole.LEGEND, font)
        elif pc.swatch in (_Swatch.LINE, _Swatch.DASHED):
            painter.polyline([(px_, y_mid), (px_ + w, y_mid)], pc.colour, style.line,
                             dashed=pc.swatch is _Swatch.DASHED)  # fmt: skip
        elif pc.swatch is _Swatch.STRIP:
            xm = px_ + w / 2
            painter.polyline([(xm, y_mid - fs * 0.55), (xm, y_mid + fs * 0.55)], pc.colour,
                             style.strip)  # fmt: skip
        else:
            _ramp(painter, font, px_, y_mid, w, fs)
    return _Strip(img, tuple(painter.labels))


def _ramp(painter: _Painter, font: Font, x0: int, y_mid: float, w: int, fs: float) -> None:
    """The grade colour scale 0 -> 3 with the grades written under it."""
    bar_h = max(4, round(fs * 0.4))
    y0 = round(y_mid - fs * 0.7)
    colours = np.array([grade_colour(3.0 * i / max(1, w - 1)) for i in range(w)], np.uint8)
    bar = np.repeat(colours[None, :, :], bar_h + 1, axis=0)
    painter.img.paste(Image.fromarray(bar), (x0, y0))
    for g in range(4):
        text = str(g)
        tw, th = painter.text_size(text, font)
        cx = x0 + round(g * (w - 1) / 3)
        bx = min(max(x0, cx - tw // 2), x0 + w - tw)
        top = y0 + bar_h - painter.style.halo // 2
        painter.text((bx, top, bx + tw, top + th), text, TEXT_COLOUR, LabelRole.LEGEND, font)


def save_overlay(rgb: npt.NDArray[np.uint8], path: str | Path) -> Path:
    """Save an overlay picture from :func:`overlay_image` as PNG (atomically, folders created).

    The PNG carries the text chunk ``Software=aacscore <version>``: collecting inputs skips it
    (an overlay is never scored as a film)."""
    buf = io.BytesIO()
    info = PngInfo()
    info.add_text(PNG_SOFTWARE_KEY, f"{OUTPUT_MARK} {__version__}")
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buf.getvalue())
