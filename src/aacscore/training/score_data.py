"""Training data for the score model: bands + Kauppila targets, built once and cached in .npz.

Two sources:

* a simulator folder (``aacscore.simulate``): ``case_*.json`` (vertebra corners, spacing,
  anterior side, per-segment fraction and grade) next to the film named in ``truth.csv``.
  The TRUE corners are jittered (default ~1.5 mm RMS per corner) to mimic the spine stage;
* the user's films with a CSV naming each file and giving either the 8 segment grades
  (columns ``L1_anterior`` ... ``L4_posterior``) or only the total (``aac24``; then only the
  ``total`` head can train). Film geometry comes from a :data:`GeometryProvider` callable, so
  the spine model can be plugged in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore._files import atomic_savez
from aacscore.aorta.roi import DEFAULT_BAND_GEOMETRY, Band, BandError, BandGeometry, extract_band
from aacscore.kauppila import SEGMENTS
from aacscore.simulate.calcification import HARD_NEGATIVE

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
F32 = npt.NDArray[np.float32]


class ScoreDataError(ValueError):
    """Unusable training data; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, eq=False)
class FilmGeometry:
    """A decoded film and its vertebral geometry, as the spine stage (or the simulator) gives."""

    image: F32
    corners: Mapping[str, npt.NDArray[np.float64]]
    anterior_side: str
    spacing_mm: tuple[float, float] | None


GeometryProvider = Callable[[Path], FilmGeometry]
"""Film path -> :class:`FilmGeometry` (e.g. read the film and run the spine model on it)."""


@dataclass(frozen=True, eq=False)
class BandSet:
    """Bands and targets. NaN marks an unknown target.

    ``bands`` float16 (N, H, W) raw film intensities; ``grades``/``fractions`` (N, 8) in
    :data:`aacscore.kauppila.SEGMENTS` order; ``totals`` (N,); ``case_ids`` name the film of
    each row (several rows per film when corners were jittered several times);
    ``level_length_mm`` and ``vertebral_height_mm`` (N, 4) describe L1-L4 (for AAC-8);
    ``hard_negative`` (N,) marks simulated hard negatives (``--distribution negative``) and
    ``family`` (N,) names each row's simulator family (``a``, ``b``; empty for films). Both
    default to "not a hard negative" and "" (sets built before they existed).
    """

    bands: npt.NDArray[np.float16]
    grades: F32
    fractions: F32
    totals: F32
    level_length_mm: F32
    vertebral_height_mm: F32
    case_ids: tuple[str, ...]
    copy_index: npt.NDArray[np.int16]
    geometry: BandGeometry
    meta: Mapping[str, Any]
    hard_negative: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    family: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self)
        if len(self.hard_negative) != n:
            if len(self.hard_negative):
                raise ValueError(f"hard_negative has {len(self.hard_negative)} rows, not {n}")
            object.__setattr__(self, "hard_negative", np.zeros(n, dtype=bool))
        if len(self.family) != n:
            if self.family:
                raise ValueError(f"family has {len(self.family)} rows, not {n}")
            object.__setattr__(self, "family", ("",) * n)

    def __len__(self) -> int:
        return int(self.bands.shape[0])

    @property
    def has_grades(self) -> bool:
        """Whether every row has all 8 segment grades."""
        return bool(len(self)) and bool(np.all(np.isfinite(self.grades)))

    @property
    def has_fractions(self) -> bool:
        """Whether any row has segment fractions."""
        return bool(np.any(np.isfinite(self.fractions)))

    def subset(self, idx: npt.ArrayLike) -> BandSet:
        """Rows ``idx`` as a new set."""
        i = np.asarray(idx, dtype=np.intp)
        return BandSet(
            bands=self.bands[i],
            grades=self.grades[i],
            fractions=self.fractions[i],
            totals=self.totals[i],
            level_length_mm=self.level_length_mm[i],
            vertebral_height_mm=self.vertebral_height_mm[i],
            case_ids=tuple(self.case_ids[k] for k in i),
            copy_index=self.copy_index[i],
            geometry=self.geometry,
            meta=self.meta,
            hard_negative=self.hard_negative[i],
            family=tuple(self.family[k] for k in i),
        )

    def save(self, path: str | Path) -> Path:
        """Write an .npz (uncompressed; bands are noise-like and barely compress)."""
        p = Path(path)
        atomic_savez(
            p,
            bands=self.bands,
            grades=self.grades,
            fractions=self.fractions,
            totals=self.totals,
            level_length_mm=self.level_length_mm,
            vertebral_height_mm=self.vertebral_height_mm,
            case_ids=np.asarray(self.case_ids, dtype=str),
            copy_index=self.copy_index,
            geometry=np.asarray(json.dumps(self.geometry.as_dict())),
            meta=np.asarray(json.dumps(dict(self.meta))),
            hard_negative=self.hard_negative,
            family=np.asarray(self.family, dtype=str),
        )
        return p

    @classmethod
    def load(cls, path: str | Path) -> BandSet:
        """Read a set written by :meth:`save`."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                return cls(
                    bands=z["bands"],
                    grades=z["grades"],
                    fractions=z["fractions"],
                    totals=z["totals"],
                    level_length_mm=z["level_length_mm"],
                    vertebral_height_mm=z["vertebral_height_mm"],
                    case_ids=tuple(str(c) for c in z["case_ids"]),
                    copy_index=z["copy_index"],
                    geometry=BandGeometry.from_dict(json.loads(str(z["geometry"]))),
                    meta=json.loads(str(z["meta"])),
                    hard_negative=(
                        z["hard_negative"].astype(bool)
                        if "hard_negative" in z.files
                        else np.zeros(0, dtype=bool)
                    ),
                    family=tuple(str(f) for f in z["family"]) if "family" in z.files else (),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ScoreDataError(p, f"not a readable band cache ({exc})") from exc


def jitter_corners(
    corners: Mapping[str, npt.ArrayLike],
    spacing_mm: tuple[float, float],
    rms_mm: float,
    rng: np.random.Generator,
) -> dict[str, npt.NDArray[np.float64]]:
    """Corners displaced like a spine-stage error of ``rms_mm`` RMS per corner.

    70 % of the variance is a shift of the whole vertebra, 30 % independent per corner.
    """
    per_axis = rms_mm / math.sqrt(2.0)
    sd_vert = per_axis * math.sqrt(0.7)
    sd_corner = per_axis * math.sqrt(0.3)
    to_px = np.array([1.0 / spacing_mm[1], 1.0 / spacing_mm[0]])
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, c in corners.items():
        arr = np.asarray(c, dtype=np.float64)
        d = rng.normal(0.0, sd_vert, 2) + rng.normal(0.0, sd_corner, arr.shape)
        out[name] = arr + d * to_px
    return out


# --- simulator folders -----------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedCase:
    """One case of a simulator folder: film path, geometry and truth."""

    case_id: str
    film: Path
    corners: dict[str, npt.NDArray[np.float64]]
    anterior_side: str
    spacing_mm: tuple[float, float] | None
    grades: tuple[int, ...]
    fractions: tuple[float, ...]
    family: str = "a"
    distribution: str = ""

    @property
    def hard_negative(self) -> bool:
        """Whether the case is a simulated hard negative (``--distribution negative``)."""
        return self.distribution == HARD_NEGATIVE


def is_simulated_folder(path: str | Path) -> bool:
    """Whether ``path`` looks like simulator output (case JSON files)."""
    p = Path(path)
    return p.is_dir() and any(p.glob("case_*.json"))


def read_case_json(path: str | Path, film: Path | None = None) -> SimulatedCase:
    """Parse one simulator case JSON; the film is ``film`` or the json's sibling .png/.dcm."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ScoreDataError(p, f"cannot read case JSON ({exc})") from exc
    try:
        verts = d["vertebrae"]
        corners = {
            str(k): np.asarray(v["corners"] if isinstance(v, Mapping) else v, dtype=np.float64)
            for k, v in verts.items()
        }
        side = str(d["anterior_side"])
        sp = d.get("spacing_mm")
        spacing = None if sp is None else (float(sp[0]), float(sp[1]))
        segs = d["segments"]
        grades = tuple(int(segs[s]["grade"]) for s in SEGMENTS)
        fractions = tuple(float(segs[s]["fraction"]) for s in SEGMENTS)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ScoreDataError(p, f"case JSON lacks a field or has a bad value ({exc!r})") from exc
    if film is None:
        files = d.get("files") if isinstance(d.get("files"), Mapping) else {}
        names = [d.get("file"), files.get("png"), files.get("dicom")]
        cands = [p.parent / str(n) for n in names if n]
        cands += [p.with_suffix(ext) for ext in (".png", ".dcm")]
        film = next((c for c in cands if c.is_file()), None)
        if film is None:
            raise ScoreDataError(p, "no film (.png or .dcm) next to the case JSON")
    return SimulatedCase(
        case_id=str(d.get("case", p.stem)),
        film=film,
        corners=corners,
        anterior_side=side,
        spacing_mm=spacing,
        grades=grades,
        fractions=fractions,
        family=str(d.get("family", "a")),
        distribution=str(d.get("distribution", "")),
    )


def list_simulated_cases(data_dir: str | Path) -> list[Path]:
    """Case JSON paths of a simulator folder (sorted)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise ScoreDataError(d, "data folder not found")
    cases = sorted(d.glob("case_*.json"))
    if not cases:
        raise ScoreDataError(d, "no case_*.json files: not a simulator output folder")
    return cases


def _films_from_truth(data_dir: Path) -> dict[str, Path]:
    truth = data_dir / "truth.csv"
    if not truth.is_file():
        return {}
    import pandas as pd

    df = pd.read_csv(truth)
    if "file" not in df.columns:
        return {}
    return {Path(str(f)).stem: data_dir / str(f) for f in df["file"]}


def _read_film(path: Path, spacing: tuple[float, float] | None) -> F32:
    from aacscore.io import read_radiograph

    rad = read_radiograph(path, spacing_mm=spacing)
    return rad.pixels


def _empty_targets(n: int) -> tuple[F32, F32, F32]:
    nan8 = np.full((n, len(SEGMENTS)), np.nan, dtype=np.float32)
    return nan8.copy(), nan8.copy(), np.full(n, np.nan, dtype=np.float32)


def _progress_iter(items: Sequence[Any], label: str, show: bool) -> Iterable[Any]:
    if not show:
        yield from items
        return
    from aacscore._progress import progress_bar

    with progress_bar(label, transient=True) as prog:
        task = prog.add_task(label, total=len(items))
        for it in items:
            yield it
            prog.advance(task)


def _simulated_cases(
    root: Path, max_cases: int | None, label: str, progress: bool
) -> Iterable[tuple[Path, SimulatedCase]]:
    """(case JSON path, parsed case) of a simulator folder, the first ``max_cases`` only."""
    paths = list_simulated_cases(root)[:max_cases]
    films = _films_from_truth(root)
    for jp in _progress_iter(paths, label, progress):
        yield jp, read_case_json(jp, films.get(jp.stem))


def build_simulated_bands(
    data_dir: str | Path,
    *,
    geometry: BandGeometry = DEFAULT_BAND_GEOMETRY,
    jitter_mm: float = 1.5,
    n_jitter: int = 1,
    seed: int = 0,
    max_cases: int | None = None,
    progress: bool = False,
) -> BandSet:
    """Bands of a simulator folder, ``n_jitter`` jittered copies per case (copy 0 first).

    Cases whose band cannot be extracted are skipped with a warning (counted in ``meta``).
    """
    root = Path(data_dir)
    rows: list[tuple[SimulatedCase, Band, int]] = []
    skipped: list[str] = []
    for jp, case in _simulated_cases(root, max_cases, "Extracting bands", progress):
        try:
            image = _read_film(case.film, case.spacing_mm)
        except ValueError as exc:
            raise ScoreDataError(case.film, f"cannot read film ({exc})") from exc
        if case.spacing_mm is None:
            raise ScoreDataError(jp, "simulated case without spacing_mm")
        rng = np.random.default_rng([seed, _stable_int(case.case_id)])
        for k in range(n_jitter):
            corners = (
                jitter_corners(case.corners, case.spacing_mm, jitter_mm, rng)
                if jitter_mm > 0
                else case.corners
            )
            try:
                band = extract_band(
                    image, corners, case.anterior_side, case.spacing_mm, geometry=geometry
                )
            except BandError as exc:
                logger.warning("%s: skipped (%s)", jp, exc)
                skipped.append(jp.name)
                break
            rows.append((case, band, k))
    if not rows:
        raise ScoreDataError(root, "no usable case")
    return _simulated_bandset(
        rows,
        geometry,
        {
            "source": "simulated",
            "data_dir": str(root.resolve()),
            "skipped": skipped,
            "jitter_mm": jitter_mm,
            "n_jitter": n_jitter,
            "seed": seed,
        },
    )


def _simulated_bandset(
    rows: Sequence[tuple[SimulatedCase, Band, int]], geometry: BandGeometry, meta: dict[str, Any]
) -> BandSet:
    """A :class:`BandSet` of (case, band, copy index) rows with the simulator's true targets."""
    n = len(rows)
    grades, fractions, totals = _empty_targets(n)
    for i, (case, _, _) in enumerate(rows):
        grades[i] = case.grades
        fractions[i] = case.fractions
        totals[i] = sum(case.grades)
    return BandSet(
        bands=np.stack([b.pixels.astype(np.float16) for _, b, _ in rows]),
        grades=grades,
        fractions=fractions,
        totals=totals,
        level_length_mm=np.asarray([b.level_length_mm for _, b, _ in rows], dtype=np.float32),
        vertebral_height_mm=np.asarray(
            [b.vertebral_height_mm for _, b, _ in rows], dtype=np.float32
        ),
        case_ids=tuple(c.case_id for c, _, _ in rows),
        copy_index=np.asarray([k for _, _, k in rows], dtype=np.int16),
        geometry=geometry,
        meta={**meta, "n_cases": len({c.case_id for c, _, _ in rows})},
        hard_negative=np.asarray([c.hard_negative for c, _, _ in rows], dtype=bool),
        family=tuple(c.family for c, _, _ in rows),
    )


def build_simulated_spine_bands(
    data_dir: str | Path,
    provider: GeometryProvider,
    *,
    geometry: BandGeometry = DEFAULT_BAND_GEOMETRY,
    copy_index: int = 0,
    max_cases: int | None = None,
    progress: bool = False,
) -> BandSet:
    """One band per simulated film cut from the corners that ``provider`` (the spine model)
    finds on the film, labelled with the simulator's true grades.

    The score model then learns the spine stage's real bound errors (heavier-tailed than the
    Gaussian corner jitter of :func:`build_simulated_bands`). Films where the spine stage or the
    band fails are skipped with a warning (listed in ``meta``). Rows get ``copy_index``.
    """
    root = Path(data_dir)
    rows: list[tuple[SimulatedCase, Band, int]] = []
    skipped: list[str] = []
    for jp, case in _simulated_cases(root, max_cases, "Spine-model bands", progress):
        try:
            fg = provider(case.film)
            band = extract_band(
                fg.image, fg.corners, fg.anterior_side, fg.spacing_mm, geometry=geometry
            )
        except ValueError as exc:  # SpineError, BandError, RadiographError are ValueErrors
            logger.warning("%s: no spine-model band (%s)", jp, exc)
            skipped.append(jp.name)
            continue
        rows.append((case, band, copy_index))
    if not rows:
        raise ScoreDataError(root, "the spine model gave no usable band on any film")
    meta = {"source": "simulated-spine", "data_dir": str(root.resolve()), "skipped": skipped}
    return _simulated_bandset(rows, geometry, meta)


def spine_model_fingerprint(spine_model: str | Path | None = None) -> str:
    """Identity of a spine model for band caches: its spec and the SHA-256 of its weights."""
    from aacscore.spine.predict import default_model_dir

    spec = None if spine_model is None else str(spine_model)
    folder = (
        Path(spec[len("nnunet:") :])
        if spec is not None and spec.startswith("nnunet:")
        else (Path(spec) if spec is not None else default_model_dir())
    )
    h = hashlib.sha256(str(spec).encode())
    for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if f.suffix in (".safetensors", ".pth", ".json") and f.is_file():
            h.update(f.name.encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


# --- user films + CSV ------------------------------------------------------------------------


def read_labels_csv(csv_path: str | Path) -> tuple[list[Path], F32, F32]:
    """Films, grades (N, 8; NaN when only totals) and totals (N,) of a labels CSV.

    Required: a ``file`` column (path relative to the CSV) and either the 8 segment columns or
    ``aac24``.
    """
    import pandas as pd

    p = Path(csv_path)
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError) as exc:
        raise ScoreDataError(p, f"cannot read labels CSV ({exc})") from exc
    if "file" not in df.columns:
        raise ScoreDataError(p, "labels CSV needs a 'file' column naming each film")
    has_seg = all(s in df.columns for s in SEGMENTS)
    if not has_seg and "aac24" not in df.columns:
        raise ScoreDataError(
            p, f"labels CSV needs the 8 segment columns ({', '.join(SEGMENTS)}) or 'aac24'"
        )
    n = len(df)
    if n == 0:
        raise ScoreDataError(p, "labels CSV has no rows")
    grades, _, totals = _empty_targets(n)
    if has_seg:
        g = df[list(SEGMENTS)].to_numpy(dtype=np.float64)
        bad = ~np.isin(g, [0, 1, 2, 3])
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            raise ScoreDataError(p, f"row {r + 2}: segment grades must be integers 0-3")
        grades[:] = g
        totals[:] = g.sum(axis=1)
        if "aac24" in df.columns:
            given = df["aac24"].to_numpy(dtype=np.float64)
            mismatch = np.flatnonzero(np.abs(given - totals) > 1e-6)
            if len(mismatch):
                raise ScoreDataError(
                    p, f"row {int(mismatch[0]) + 2}: aac24 differs from the sum of the grades"
                )
    else:
        t = df["aac24"].to_numpy(dtype=np.float64)
        if np.any(~np.isfinite(t)) or np.any((t < 0) | (t > 24)):
            raise ScoreDataError(p, "aac24 must be a number in 0-24 on every row")
        totals[:] = t
    films = [(p.parent / str(f)) for f in df["file"]]
    return films, grades, totals


def build_film_bands(
    csv_path: str | Path,
    provider: GeometryProvider,
    *,
    geometry: BandGeometry = DEFAULT_BAND_GEOMETRY,
    progress: bool = False,
) -> BandSet:
    """Bands of the user's films listed in a labels CSV, geometry from ``provider``.

    Films whose geometry or band fails are skipped with a warning (listed in ``meta``).
    """
    films, grades, totals = read_labels_csv(csv_path)
    keep: list[int] = []
    bands: list[Band] = []
    skipped: list[str] = []
    for i in _progress_iter(list(range(len(films))), "Extracting bands", progress):
        f = films[i]
        if not f.is_file():
            raise ScoreDataError(f, "film listed in the labels CSV not found")
        try:
            fg = provider(f)
            band = extract_band(
                fg.image, fg.corners, fg.anterior_side, fg.spacing_mm, geometry=geometry
            )
        except ValueError as exc:  # SpineError, BandError, RadiographError are ValueErrors
            logger.warning("%s: skipped (%s)", f, exc)
            skipped.append(str(f))
            continue
        keep.append(i)
        bands.append(band)
    if not bands:
        raise ScoreDataError(csv_path, "no film gave a usable band")
    k = np.asarray(keep)
    nan8 = np.full((len(k), len(SEGMENTS)), np.nan, dtype=np.float32)
    return BandSet(
        bands=np.stack([b.pixels.astype(np.float16) for b in bands]),
        grades=grades[k],
        fractions=nan8,
        totals=totals[k],
        level_length_mm=np.asarray([b.level_length_mm for b in bands], dtype=np.float32),
        vertebral_height_mm=np.asarray([b.vertebral_height_mm for b in bands], dtype=np.float32),
        case_ids=tuple(str(films[i]) for i in keep),
        copy_index=np.zeros(len(k), dtype=np.int16),
        geometry=geometry,
        meta={
            "source": "films",
            "labels_csv": str(Path(csv_path).resolve()),
            "n_cases": len(keep),
            "skipped": skipped,
        },
    )


def concat_bandsets(sets: Sequence[BandSet], *, same_films: bool = False) -> BandSet:
    """One set from several (same band geometry); with more than one, case ids get a ``k:``
    prefix (k = position) so films of different folders never collide.

    ``same_films``: the sets are other copies of the same folder's films (e.g. jittered and
    spine-model bands); case ids are kept so that a film's copies stay on one side of the split.
    """
    if not sets:
        raise ValueError("no band sets to combine")
    if len(sets) == 1:
        return sets[0]
    geo = sets[0].geometry
    if any(s.geometry != geo for s in sets):
        raise ValueError("band sets with different band geometries cannot be combined")
    return BandSet(
        bands=np.concatenate([s.bands for s in sets]),
        grades=np.concatenate([s.grades for s in sets]),
        fractions=np.concatenate([s.fractions for s in sets]),
        totals=np.concatenate([s.totals for s in sets]),
        level_length_mm=np.concatenate([s.level_length_mm for s in sets]),
        vertebral_height_mm=np.concatenate([s.vertebral_height_mm for s in sets]),
        case_ids=tuple(
            c if same_films else f"{k}:{c}" for k, s in enumerate(sets) for c in s.case_ids
        ),
        copy_index=np.concatenate([s.copy_index for s in sets]),
        hard_negative=np.concatenate([s.hard_negative for s in sets]),
        family=tuple(f for s in sets for f in s.family),
        geometry=geo,
        meta={
            "source": "+".join(str(s.meta.get("source", "?")) for s in sets),
            "data_dir": "; ".join(
                str(s.meta.get("data_dir", s.meta.get("labels_csv", "?"))) for s in sets
            ),
            "n_cases": (
                len({c for s in sets for c in s.case_ids})
                if same_films
                else sum(int(s.meta.get("n_cases", 0)) for s in sets)
            ),
            "skipped": [x for s in sets for x in s.meta.get("skipped", [])],
            "parts": [{k: v for k, v in s.meta.items() if k != "skipped"} for s in sets],
        },
    )


# --- cache + split ---------------------------------------------------------------------------


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def source_fingerprint(
    data: str | Path, files: Sequence[Path] | None = None, **settings: Any
) -> str:
    """Hash of the data files (names, sizes, mtimes; default: all files of the folder, or the
    file itself) and the extraction settings."""
    p = Path(data)
    h = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True).encode())
    if files is None:
        files = sorted(p.glob("*")) if p.is_dir() else [p]
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def cached_bands(cache_dir: str | Path, key: str, build: Callable[[], BandSet]) -> BandSet:
    """Load ``bands_<key>.npz`` from ``cache_dir`` or build and save it."""
    path = Path(cache_dir) / f"bands_{key}.npz"
    if path.is_file():
        logger.info("band cache %s", path)
        return BandSet.load(path)
    bs = build()
    bs.save(path)
    logger.info("band cache written: %s (%d bands)", path, len(bs))
    return bs


def split_by_case(
    case_ids: Sequence[str],
    val_fraction: float,
    seed: int,
    strata: Sequence[str] | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Train and validation row indices; all copies of a film go to the same side.

    ``strata`` (one label per row, e.g. family and hard-negative flag): each stratum with at
    least 2 films is split on its own, so every such stratum has films on both sides."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    unique = sorted(set(case_ids))
    if len(unique) < 2:
        raise ValueError("need at least 2 films to split into training and validation")
    labels = [""] * len(case_ids) if strata is None else list(strata)
    if len(labels) != len(case_ids):
        raise ValueError(f"{len(labels)} strata for {len(case_ids)} rows")
    film_stratum = dict(zip(case_ids, labels, strict=True))
    val: set[str] = set()
    groups = sorted(set(film_stratum.values()))
    for g in groups:
        films = sorted(c for c in unique if film_stratum[c] == g)
        if len(films) < 2 and len(groups) > 1:
            continue  # too small to split: training only
        order = sorted(films, key=lambda c: _stable_int(f"{seed}:{c}"))
        n_val = min(max(1, round(val_fraction * len(films))), len(films) - 1)
        val.update(order[:n_val])
    is_val = np.asarray([c in val for c in case_ids])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def spine_geometry_provider(spine_model: str | Path | None = None) -> GeometryProvider:
    """A :data:`GeometryProvider` that reads each film and finds its vertebrae with the spine
    model (``aacscore.spine``; default: the shipped weights, or ``nnunet:FOLDER``)."""
    from aacscore.io import read_radiograph
    from aacscore.spine.predict import load_spine_model

    model = load_spine_model(spine_model)

    def provider(path: Path) -> FilmGeometry:
        rad = read_radiograph(path)
        res = model.predict(rad)
        return FilmGeometry(
            image=rad.pixels,
            corners={n: np.asarray(v.corners) for n, v in res.vertebrae.items()},
            anterior_side=res.anterior_side,
            spacing_mm=rad.spacing_mm,
        )

    return provider
