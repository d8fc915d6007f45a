"""The vertebra contract: levels, label values, corner order, sides, vertebrae and Kauppila bounds.

Every part of aacscore that deals with vertebrae imports this module (spine geometry, the aortic
band, the simulator's truth, the overlay, the DICOM writer, training data), so that the bounds
drawn on a film are the bounds its band is graded on and the simulator's truth is defined on.

Conventions: points are ``(x, y)`` = (column, row) in the pixels (or millimetres) of one image
frame, pixel centres at integer coordinates. The four corners of a body are stored in the order
of :class:`Corner`: anterior-superior, posterior-superior, posterior-inferior, anterior-inferior.

Kauppila bounds (the five lines T12/L1 ... L4/L5 that delimit the segments of L1-L4): the line
through the midpoint of the intervertebral space (mean of the four corners facing the disc)
along the mean of the two end-plate directions, pointing anteriorly. Its anchors on the anterior
and posterior vertebral margins are the projections onto the line of the midpoints of the two
anterior (posterior) corners facing the disc. A T12 (L5) that is missing, or whose disc with L1
(L4) is implausible (a body cut by the edge of the field, see :func:`outer_disc_problem`), is
replaced by an extrapolation: L1's superior (L4's inferior) end-plate moved cranially (caudally)
by half the height of the neighbouring disc, flagged ``extrapolated``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.codes import ErrorCode, ScoringError
from aacscore.kauppila import LEVELS

FloatArray = npt.NDArray[np.float64]

# -------------------------------------------------------------------------------------------
# Vocabulary
# -------------------------------------------------------------------------------------------

LEVEL_ORDER: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
"""Segmented levels from cranial to caudal."""
KAUPPILA_LEVELS: tuple[str, ...] = LEVELS
"""The four levels graded by Kauppila (L1-L4)."""
REQUIRED_LEVELS: tuple[str, ...] = LEVELS
EXPECTED_LEVELS: tuple[str, ...] = ("L5",)
OUTER_LEVELS: tuple[str, str] = ("T12", "L5")
"""The neighbours of L1-L4 that give the outer bounds when they are usable."""
LABEL_VALUES: dict[str, int] = {"L1": 1, "L2": 2, "L3": 3, "L4": 4, "L5": 5, "T12": 6, "S1": 7}
"""Label value of each body in label maps (0 is background)."""
CLASS_NAMES: tuple[str, ...] = ("background", *sorted(LABEL_VALUES, key=LABEL_VALUES.__getitem__))
"""Class names indexed by label value."""
MAX_LABEL = len(CLASS_NAMES) - 1
DISC_NAMES: tuple[str, ...] = tuple(
    f"{a}/{b}" for a, b in itertools.pairwise(("T12", *LEVELS, "L5"))
)
"""The five intervertebral spaces that bound the Kauppila segments of L1-L4 (``"T12/L1"``...)."""


class Corner(IntEnum):
    """Index of each corner in a vertebra's 4x2 corner array."""

    ANTERIOR_SUPERIOR = 0
    POSTERIOR_SUPERIOR = 1
    POSTERIOR_INFERIOR = 2
    ANTERIOR_INFERIOR = 3

    @property
    def key(self) -> str:
        """``"anterior_superior"`` etc., the name used in JSON and CSV files."""
        return self.name.lower()


CORNER_NAMES: tuple[str, ...] = tuple(c.key for c in Corner)


class Side(str, Enum):
    """The side of the film the patient's anterior faces."""

    LEFT = "left"
    RIGHT = "right"

    def __str__(self) -> str:
        return self.value

    @property
    def mirrored(self) -> Side:
        return Side.RIGHT if self == Side.LEFT else Side.LEFT

    @classmethod
    def parse(cls, value: str | Side) -> Side:
        """A side from ``"left"``/``"right"`` (any case); ValueError naming the value otherwise."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"anterior_side must be 'left' or 'right', got {value!r}") from None


ANTERIOR_SIDES: tuple[str, ...] = tuple(s.value for s in Side)


def disc_name(upper: str, lower: str) -> str:
    return f"{upper}/{lower}"


def level_bound_names(level: str) -> tuple[str, str]:
    """The (cranial, caudal) bound names of a Kauppila level: ``"L2"`` -> ("L1/L2", "L2/L3")."""
    if level not in LEVELS:
        raise ValueError(f"Kauppila levels are {', '.join(LEVELS)}, got {level!r}")
    i = LEVELS.index(level)
    return DISC_NAMES[i], DISC_NAMES[i + 1]


# -------------------------------------------------------------------------------------------
# Geometry primitives
# -------------------------------------------------------------------------------------------


class SpineError(ScoringError):
    """The spine could not be measured reliably; the message names the input and the problem."""

    def __init__(
        self,
        problem: str,
        source: str | None = None,
        *,
        code: ErrorCode = ErrorCode.IMPLAUSIBLE_SPINE,
    ) -> None:
        super().__init__(code, problem, source)


def readonly(a: npt.ArrayLike) -> FloatArray:
    arr = np.array(a, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def unit(v: npt.ArrayLike) -> FloatArray:
    """``v`` scaled to length 1; :class:`SpineError` for a zero or non-finite vector."""
    a = np.asarray(v, dtype=np.float64)
    n = float(np.hypot(a[0], a[1]))
    if n == 0.0 or not math.isfinite(n):
        raise SpineError(f"degenerate direction vector {a.tolist()}")
    return a / n


def distance_mm(p: npt.ArrayLike, q: npt.ArrayLike, spacing_mm: tuple[float, float]) -> float:
    """Distance between two ``(x, y)`` points in mm for a (row, column) pixel spacing."""
    d = np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    return float(math.hypot(d[0] * spacing_mm[1], d[1] * spacing_mm[0]))


def anterior_vector(cranial: npt.ArrayLike, anterior_side: str | Side) -> FloatArray:
    """Unit anterior direction perpendicular to ``cranial`` for the given anterior side."""
    side = Side.parse(anterior_side)
    u = unit(cranial)
    if side == Side.LEFT:
        return np.array([u[1], -u[0]])
    return np.array([-u[1], u[0]])


@dataclass(frozen=True, eq=False)
class Vertebra:
    """One vertebral body: four corners (order of :class:`Corner`) as a read-only 4x2 array.

    ``fit_rms_px`` is the RMS distance of the outline to the fitted quadrilateral sides;
    ``area_px`` the outline's area in pixels.
    """

    name: str
    corners: FloatArray
    area_px: float = float("nan")
    fit_rms_px: float = float("nan")
    spacing_mm: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        c = np.asarray(self.corners, dtype=np.float64)
        if c.shape != (4, 2) or not np.all(np.isfinite(c)):
            raise SpineError(f"{self.name}: corners must be a finite 4x2 array, got {c.shape}")
        object.__setattr__(self, "corners", readonly(c))

    def corner(self, which: Corner) -> FloatArray:
        return self.corners[which]

    @property
    def anterior_superior(self) -> FloatArray:
        return self.corners[Corner.ANTERIOR_SUPERIOR]

    @property
    def posterior_superior(self) -> FloatArray:
        return self.corners[Corner.POSTERIOR_SUPERIOR]

    @property
    def posterior_inferior(self) -> FloatArray:
        return self.corners[Corner.POSTERIOR_INFERIOR]

    @property
    def anterior_inferior(self) -> FloatArray:
        return self.corners[Corner.ANTERIOR_INFERIOR]

    @property
    def center(self) -> FloatArray:
        """Mean of the four corners."""
        return self.corners.mean(axis=0)

    @property
    def superior_midpoint(self) -> FloatArray:
        return (self.anterior_superior + self.posterior_superior) / 2.0

    @property
    def inferior_midpoint(self) -> FloatArray:
        return (self.posterior_inferior + self.anterior_inferior) / 2.0

    @property
    def anterior_midpoint(self) -> FloatArray:
        return (self.anterior_superior + self.anterior_inferior) / 2.0

    @property
    def posterior_midpoint(self) -> FloatArray:
        return (self.posterior_superior + self.posterior_inferior) / 2.0

    @property
    def anterior_margin(self) -> FloatArray:
        """2x2 array: AS, AI."""
        return self.corners[[Corner.ANTERIOR_SUPERIOR, Corner.ANTERIOR_INFERIOR]]

    @property
    def posterior_margin(self) -> FloatArray:
        """2x2 array: PS, PI."""
        return self.corners[[Corner.POSTERIOR_SUPERIOR, Corner.POSTERIOR_INFERIOR]]

    @property
    def superior_direction(self) -> FloatArray:
        """Unit vector along the superior end-plate, pointing anteriorly (PS -> AS)."""
        return unit(self.anterior_superior - self.posterior_superior)

    @property
    def inferior_direction(self) -> FloatArray:
        """Unit vector along the inferior end-plate, pointing anteriorly (PI -> AI)."""
        return unit(self.anterior_inferior - self.posterior_inferior)

    @property
    def cranial_direction(self) -> FloatArray:
        """Unit vector from the inferior to the superior end-plate midpoint."""
        return unit(self.superior_midpoint - self.inferior_midpoint)

    @property
    def height_px(self) -> float:
        """Distance between the end-plate midpoints."""
        return float(np.hypot(*(self.superior_midpoint - self.inferior_midpoint)))

    @property
    def depth_px(self) -> float:
        """Distance between the anterior and posterior margin midpoints."""
        return float(np.hypot(*(self.anterior_midpoint - self.posterior_midpoint)))

    @property
    def anterior_height(self) -> float:
        """AS-AI distance in the corners' units."""
        return float(np.hypot(*(self.anterior_superior - self.anterior_inferior)))

    @property
    def posterior_height(self) -> float:
        """PS-PI distance in the corners' units."""
        return float(np.hypot(*(self.posterior_superior - self.posterior_inferior)))

    @property
    def vertebral_height(self) -> float:
        """Mean of the anterior and posterior heights (the AAC-8 length unit)."""
        return (self.anterior_height + self.posterior_height) / 2.0

    @property
    def height_mm(self) -> float | None:
        if self.spacing_mm is None:
            return None
        return distance_mm(self.superior_midpoint, self.inferior_midpoint, self.spacing_mm)

    @property
    def depth_mm(self) -> float | None:
        if self.spacing_mm is None:
            return None
        return distance_mm(self.anterior_midpoint, self.posterior_midpoint, self.spacing_mm)

    def transformed(
        self,
        fn: Callable[[FloatArray], FloatArray],
        spacing_mm: tuple[float, float] | None,
        area_scale: float = 1.0,
        length_scale: float = 1.0,
    ) -> Vertebra:
        """The same body with corners mapped by ``fn`` (an ``(N, 2) -> (N, 2)`` point map)."""
        return Vertebra(
            name=self.name,
            corners=fn(np.asarray(self.corners)),
            area_px=self.area_px * area_scale,
            fit_rms_px=self.fit_rms_px * length_scale,
            spacing_mm=spacing_mm,
        )

    def scaled(self, xy_scale: npt.ArrayLike) -> Vertebra:
        """The body with x and y multiplied by ``xy_scale`` (e.g. pixels to millimetres)."""
        s = np.asarray(xy_scale, dtype=np.float64)
        return Vertebra(self.name, self.corners * s, spacing_mm=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (pixel coordinates, mm sizes when spacing is known)."""
        return {
            "corners": {
                n: [float(v) for v in c] for n, c in zip(CORNER_NAMES, self.corners, strict=True)
            },
            "superior_midpoint": [float(v) for v in self.superior_midpoint],
            "inferior_midpoint": [float(v) for v in self.inferior_midpoint],
            "height_px": self.height_px,
            "depth_px": self.depth_px,
            "height_mm": self.height_mm,
            "depth_mm": self.depth_mm,
            "fit_rms_px": self.fit_rms_px,
        }


@dataclass(frozen=True, eq=False)
class Bound:
    """A Kauppila segment bound: the mid-disc line, given by its anchors on the anterior and
    posterior vertebral margins (both on the line; their midpoint is the disc midpoint)."""

    name: str
    anterior: FloatArray
    posterior: FloatArray
    extrapolated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "anterior", readonly(self.anterior))
        object.__setattr__(self, "posterior", readonly(self.posterior))
        unit(self.anterior - self.posterior)  # raises on a degenerate line

    @property
    def point(self) -> FloatArray:
        """The disc midpoint."""
        return (self.anterior + self.posterior) / 2.0

    @property
    def direction(self) -> FloatArray:
        """Unit vector along the bound, pointing anteriorly."""
        return unit(self.anterior - self.posterior)

    def at(self, t: float) -> FloatArray:
        """The point ``t`` units anterior of the disc midpoint along the bound."""
        return self.point + t * self.direction

    def transformed(self, fn: Callable[[FloatArray], FloatArray]) -> Bound:
        """The bound with both anchors mapped by the point map ``fn``."""
        p = fn(np.stack([self.anterior, self.posterior]))
        return Bound(self.name, p[0], p[1], self.extrapolated)

    def scaled(self, xy_scale: npt.ArrayLike) -> Bound:
        s = np.asarray(xy_scale, dtype=np.float64)
        return Bound(self.name, self.anterior * s, self.posterior * s, self.extrapolated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": [float(v) for v in self.point],
            "direction": [float(v) for v in self.direction],
            "anterior": [float(v) for v in self.anterior],
            "posterior": [float(v) for v in self.posterior],
            "extrapolated": self.extrapolated,
        }


def _line_bound(
    name: str,
    point: FloatArray,
    direction: FloatArray,
    anterior_ref: FloatArray,
    posterior_ref: FloatArray,
    extrapolated: bool,
) -> Bound:
    d = unit(direction)
    ta = float((anterior_ref - point) @ d)
    tp = float((posterior_ref - point) @ d)
    if ta <= tp:  # a bound must run from posterior to anterior
        raise SpineError(f"{name}: degenerate mid-disc line (anterior side not in front)")
    return Bound(name, point + ta * d, point + tp * d, extrapolated)


def disc_bound(upper: Vertebra, lower: Vertebra) -> Bound:
    """The bound through the disc between two adjacent vertebrae (module docstring)."""
    point = (
        upper.posterior_inferior
        + upper.anterior_inferior
        + lower.anterior_superior
        + lower.posterior_superior
    ) / 4.0
    d = upper.inferior_direction + lower.superior_direction
    ant = (upper.anterior_inferior + lower.anterior_superior) / 2.0
    post = (upper.posterior_inferior + lower.posterior_superior) / 2.0
    return _line_bound(disc_name(upper.name, lower.name), point, d, ant, post, False)


def disc_midpoints(vertebrae: Mapping[str, Vertebra]) -> dict[str, FloatArray]:
    """Midpoint of each intervertebral space (T12/L1 ... L5/S1) whose two bodies are present."""
    out: dict[str, FloatArray] = {}
    for upper, lower in itertools.pairwise(LEVEL_ORDER):
        if upper in vertebrae and lower in vertebrae:
            u, lo = vertebrae[upper], vertebrae[lower]
            pts = np.stack(
                [
                    u.posterior_inferior,
                    u.anterior_inferior,
                    lo.anterior_superior,
                    lo.posterior_superior,
                ]
            )
            out[disc_name(upper, lower)] = readonly(pts.mean(axis=0))
    return out


def disc_height(vertebrae: Mapping[str, Vertebra], upper: str, lower: str) -> float | None:
    """Distance between the facing end-plate midpoints of two present vertebrae, else None."""
    if upper in vertebrae and lower in vertebrae:
        return float(
            np.hypot(*(vertebrae[upper].inferior_midpoint - vertebrae[lower].superior_midpoint))
        )
    return None


OUTER_DISC_MAX_RATIO = 2.5
"""A T12/L1 (L4/L5) disc is implausible when its height exceeds both this multiple of the
L1/L2 (L3/L4) disc and that disc plus :data:`OUTER_DISC_MAX_EXTRA` of the L1 (L4) body height.
On 300 held-out simulated films the true outer discs stay below x2.4 and +0.25 heights."""
OUTER_DISC_MAX_EXTRA = 0.4
OUTER_DISC_MAX_OVERLAP = 0.15
"""... or when the end-plates facing the disc overlap by more than this share of the body
height (a partly visible or mis-segmented T12 / L5)."""


def outer_disc_problem(vertebrae: Mapping[str, Vertebra], name: str) -> str | None:
    """Why the T12/L1 or L4/L5 disc of ``vertebrae`` is not usable as a Kauppila bound, or None.

    T12 and L5 are optional: at the edge of the field of view the network often segments only
    part of them, and their corners then put the outer bound tens of millimetres off. Such a
    disc is compared with the neighbouring L1/L2 (L3/L4) disc and the adjacent body height.
    """
    if name not in ("T12/L1", "L4/L5"):
        raise ValueError(f"outer discs are T12/L1 and L4/L5, got {name!r}")
    upper, lower = name.split("/")
    if upper not in vertebrae or lower not in vertebrae:
        return None
    anchor = vertebrae["L1" if name == "T12/L1" else "L4"]
    size = max(anchor.height_px, 1e-6)
    ref = disc_height(vertebrae, "L1", "L2") if name == "T12/L1" else None
    if name == "L4/L5":
        ref = disc_height(vertebrae, "L3", "L4")
    if ref is None:
        ref = 0.25 * size
    h = disc_height(vertebrae, upper, lower)
    assert h is not None
    if h > max(OUTER_DISC_MAX_RATIO * ref, ref + OUTER_DISC_MAX_EXTRA * size):
        return f"{name} disc height x{h / max(ref, 1e-6):.1f} of the neighbouring disc"
    gap = float(
        np.dot(
            vertebrae[lower].superior_midpoint - vertebrae[upper].inferior_midpoint,
            -anchor.cranial_direction,
        )
    )
    if gap < -OUTER_DISC_MAX_OVERLAP * size:
        return f"{name} end-plates overlap by {-gap / size:.2f} of the body height"
    return None


def _extrapolated_bound(vertebrae: Mapping[str, Vertebra], name: str) -> Bound:
    """T12/L1 (L4/L5) from L1's superior (L4's inferior) end-plate moved out by half the
    L1/L2 (L3/L4) disc height (a quarter body height when that disc is unknown)."""
    if name == "T12/L1":
        v, h = vertebrae["L1"], disc_height(vertebrae, "L1", "L2")
        out = v.cranial_direction
        ant, post, d = v.anterior_superior, v.posterior_superior, v.superior_direction
    else:
        v, h = vertebrae["L4"], disc_height(vertebrae, "L3", "L4")
        out = -v.cranial_direction
        ant, post, d = v.anterior_inferior, v.posterior_inferior, v.inferior_direction
    if h is None:
        h = 0.25 * v.height_px
    shift = 0.5 * h * out
    point = (ant + post) / 2.0 + shift
    return _line_bound(name, point, d, ant + shift, post + shift, True)


def kauppila_bounds(
    vertebrae: Mapping[str, Vertebra],
) -> tuple[dict[str, Bound], dict[str, FloatArray], list[str]]:
    """The five bounds T12/L1 ... L4/L5 (those that L1-L4 allow), the disc midpoints used (an
    unusable outer disc left out) and warnings. See the module docstring for the rule."""
    discs = disc_midpoints(vertebrae)
    warnings: list[str] = []
    for name, outer in zip(("T12/L1", "L4/L5"), OUTER_LEVELS, strict=True):
        problem = outer_disc_problem(vertebrae, name) if name in discs else None
        if problem is not None:
            del discs[name]
            warnings.append(
                f"{problem}: {outer} ignored for the bound, which is extrapolated "
                "(partly visible or mis-segmented)"
            )
    bounds: dict[str, Bound] = {}
    for name in DISC_NAMES:
        upper, lower = name.split("/")
        if name in discs:
            bounds[name] = disc_bound(vertebrae[upper], vertebrae[lower])
        elif name == "T12/L1" and "L1" in vertebrae:
            bounds[name] = _extrapolated_bound(vertebrae, name)
            if "T12" not in vertebrae:
                warnings.append(
                    "T12 not found (outside the field of view or not segmented): T12/L1 bound "
                    "extrapolated from the L1 superior end-plate and the L1/L2 disc height"
                )
        elif name == "L4/L5" and "L4" in vertebrae:
            bounds[name] = _extrapolated_bound(vertebrae, name)
            if "L5" not in vertebrae:
                warnings.append(
                    "L5 not found: L4/L5 bound extrapolated from the L4 inferior end-plate and "
                    "the L3/L4 disc height"
                )
    return bounds, discs, warnings


def vertebrae_from_corners(
    corners: Mapping[str, npt.ArrayLike], spacing_mm: tuple[float, float] | None = None
) -> dict[str, Vertebra]:
    """:class:`Vertebra` objects from a mapping of level name to 4x2 corners (known levels)."""
    return {
        n: Vertebra(n, np.asarray(c, dtype=np.float64), spacing_mm=spacing_mm)
        for n, c in corners.items()
        if n in LABEL_VALUES
    }
