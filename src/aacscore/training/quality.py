"""Build the familiarity reference (:class:`aacscore.gate.quality.QualityReference`).

Usage (a FRESH simulated calibration set, never the final test set)::

    python -m aacscore simulate --out data/sim_quality_cal3000 --n 150 --seed 3000 --jobs 1
    python -m aacscore.training.quality --data data/sim_quality_cal3000 \\
        --out src/aacscore/models/quality

Every film is read, its spine found by the shipped (or ``--spine-model``) spine model, its band
cut as the pipeline cuts it and its penultimate features taken from the score model. The
statistics of :mod:`aacscore.gate.quality` become the reference distributions; the band
features' mean and Ledoit-Wolf shrunk covariance (inverted) the band reference, and the band
component's reference distances are cross-validated (``--folds``, default 5: each film's
distance to the mean and covariance of the other folds), so that a new film from the same
distribution gets a uniform p-value. Films the spine stage refuses are skipped and counted.
Writes ``reference.json`` and ``README.md`` (the card: data, command, date, sha256, figures).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aacscore.gate.quality import (
    DEFAULT_THRESHOLD,
    REFERENCE_NAME,
    QualityReference,
    ReferenceDistribution,
    combine,
    film_statistics,
    mahalanobis,
    pooled_features,
    shrunk_covariance,
)
from aacscore.io import read_radiograph
from aacscore.pipeline import band_along_spine
from aacscore.score.predict import ScoreModel
from aacscore.spine.predict import SpineModelProtocol, load_spine_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FilmMeasurement:
    """What the reference needs from one film: its statistics and raw penultimate features."""

    name: str
    statistics: dict[str, float]
    features: npt.NDArray[np.float32]


def measure_film(
    path: Path, spine_model: SpineModelProtocol, score_model: ScoreModel
) -> FilmMeasurement:
    """Read, segment, cut the band (as the pipeline does) and take the features of one film."""
    rad = read_radiograph(path)
    spine = spine_model.predict(rad)
    band = band_along_spine(rad, spine, score_model.band_geometry)
    feats = score_model.features(band)
    return FilmMeasurement(path.name, film_statistics(spine, None), feats)


def films_in(folder: Path, limit: int | None = None) -> list[Path]:
    """The DICOM films (else PNG) of a simulated set, in name order."""
    paths = sorted(folder.glob("*.dcm")) or sorted(
        p for p in folder.glob("*.png") if not p.stem.endswith(("_labels", "_calc"))
    )
    return paths[:limit] if limit else paths


def cross_validated_distances(x: npt.ArrayLike, folds: int = 5) -> npt.NDArray[np.float64]:
    """Each row's Mahalanobis distance to the shrunk mean/covariance of the other folds."""
    a = np.asarray(x, dtype=np.float64)
    n = len(a)
    k = max(2, min(folds, n))
    fold = np.arange(n) % k
    out = np.zeros(n)
    for f in range(k):
        test = fold == f
        mean, cov, _ = shrunk_covariance(a[~test])
        prec = np.linalg.inv(cov)
        for i in np.nonzero(test)[0]:
            out[i] = mahalanobis(a[i], mean, prec)
    return out


def build_reference(
    measurements: Sequence[FilmMeasurement],
    channels: int,
    folds: int = 5,
    threshold: float = DEFAULT_THRESHOLD,
    info: dict[str, Any] | None = None,
) -> QualityReference:
    """The reference from measured films (see the module docstring)."""
    if len(measurements) < 10:
        raise ValueError(f"need at least 10 measured films, got {len(measurements)}")
    pooled = np.stack([pooled_features(m.features, channels) for m in measurements])
    mean, cov, shrink = shrunk_covariance(pooled)
    dists: dict[str, ReferenceDistribution] = {}
    for name in ("spine", "orientation", "geometry"):
        vals = [m.statistics[name] for m in measurements if name in m.statistics]
        vals = [v for v in vals if math.isfinite(v)]
        if len(vals) >= 10:
            dists[name] = ReferenceDistribution.fit(vals)
    cv = cross_validated_distances(pooled, folds)
    dists["band"] = ReferenceDistribution.fit(np.log(np.maximum(cv, 1e-12)).tolist())
    meta = dict(info or {})
    meta["band_features_shrinkage"] = round(shrink, 6)
    precision = np.asarray(np.linalg.inv(cov), dtype=np.float64)
    return QualityReference(dists, mean, precision, channels, threshold, meta)


def in_sample_rates(
    reference: QualityReference, measurements: Sequence[FilmMeasurement]
) -> dict[str, Any]:
    """Quality of the reference films against their own reference (band: cross-validated),
    a check of the combination, not a held-out figure."""
    pooled = np.stack(
        [pooled_features(m.features, reference.feature_channels) for m in measurements]
    )
    cvd = np.log(np.maximum(cross_validated_distances(pooled), 1e-12))
    q = []
    for m, d in zip(measurements, cvd, strict=True):
        comps = {
            k: reference.distributions[k].p_value(v)
            for k, v in m.statistics.items()
            if k in reference.distributions
        }
        comps["band"] = reference.distributions["band"].p_value(float(d))
        q.append(combine(comps))
    qa = np.asarray(q)
    return {
        "n": len(qa),
        "low_quality_rate": float(np.mean(qa < reference.threshold)),
        "quality_p5": float(np.percentile(qa, 5)),
        "quality_median": float(np.median(qa)),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CARD = """# Familiarity (quality) reference

`reference.json` holds the reference distributions of the familiarity statistics of
`aacscore.gate.quality` (spine confidence, orientation margin, geometry margin, band features'
Mahalanobis distance) and the band features' mean and shrunk precision matrix, measured on
simulated lateral lumbar films with the shipped spine and score models.

* data: {data} ({n_films} films measured, {n_skipped} refused by the spine stage and skipped)
* command: `{command}`
* date: {date}
* score model: {score_model}
* threshold: {threshold} (quality = min(1, k x smallest component p-value); below it:
  `low_quality`). Expected share of in-distribution films below it: about the threshold
  (independent components); measured rates: `benchmarks/results/quality.json`
* band features: per-channel means ({channels}), Ledoit-Wolf shrinkage {shrinkage}, reference
  distances {folds}-fold cross-validated
* in-sample check (cross-validated band, other components in-sample): {in_sample}
* sha256 of reference.json: `{sha256}`

Rebuild it with the command above whenever the spine or the score model changes: the
statistics are the models' own outputs.
"""


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m aacscore.training.quality", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--data", type=Path, required=True, help="folder of simulated films")
    ap.add_argument("--out", type=Path, required=True, help="folder for reference.json")
    ap.add_argument("--spine-model", default=None, help="spine model (default: shipped)")
    ap.add_argument("--score-model", default=None, help="score model folder (default: shipped)")
    ap.add_argument("--limit", type=int, default=None, help="use the first N films only")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = ap.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = films_in(args.data, args.limit)
    if not paths:
        print(f"{args.data}: no films (*.dcm or *.png)", file=sys.stderr)
        return 2
    spine_model = load_spine_model(args.spine_model)
    score_model = ScoreModel.load(args.score_model)
    measured: list[FilmMeasurement] = []
    skipped: list[str] = []
    for i, p in enumerate(paths):
        try:
            measured.append(measure_film(p, spine_model, score_model))
        except ValueError as exc:  # SpineError, BandError, ScoringError
            skipped.append(f"{p.name}: {exc}")
        if (i + 1) % 10 == 0:
            logger.info("%d/%d films measured (%d skipped)", i + 1, len(paths), len(skipped))
    channels = score_model.config.network.block_inplanes[-1]
    command = "python -m aacscore.training.quality " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    date = _dt.date.today().isoformat()
    info = {
        "created": date,
        "data": str(args.data),
        "n_films": len(measured),
        "n_skipped": len(skipped),
        "command": command,
        "score_model_sha256": score_model.config.sha256,
    }
    ref = build_reference(measured, channels, args.folds, args.threshold, info)
    rates = in_sample_rates(ref, measured)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / REFERENCE_NAME
    out.write_text(json.dumps(ref.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")
    (args.out / "README.md").write_text(
        CARD.format(
            data=args.data,
            n_films=len(measured),
            n_skipped=len(skipped),
            command=command,
            date=date,
            score_model=score_model.config.sha256,
            threshold=args.threshold,
            channels=channels,
            shrinkage=ref.info.get("band_features_shrinkage"),
            folds=args.folds,
            in_sample=json.dumps(rates),
            sha256=_sha256(out),
        ),
        encoding="utf-8",
    )
    print(json.dumps({"reference": str(out), "skipped": skipped, "in_sample": rates}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
