"""A second spine model that reads the films the first cannot.

The primary model (trained on the first simulator family, the one that holds up on real films)
reads every film. When its reading fails the plausibility checks (``implausible_spine``,
``spine_not_found``) or its levels are uncertain (``level_uncertain``), the fallback model
(trained on both simulator families) reads the film too. Its reading is used if it passes the
checks and is itself neither level- nor orientation-uncertain, or, when the primary's reading
failed its checks, if it passes them however unsure (its doubt flags kept: a film scored for
review rather than refused); an unsure fallback reading never replaces a plausible one of the
primary. The result is then flagged ``spine_fallback`` with the reason. Films the primary
reads confidently cost nothing extra. A model folder holding a ``fallback/`` model folder is
loaded as such a pair (:func:`aacscore.spine.predict.load_spine_model`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from aacscore.codes import ErrorCode
from aacscore.io import Radiograph
from aacscore.spine.result import SpineResult
from aacscore.vertebrae import Side, SpineError

log = logging.getLogger(__name__)

FALLBACK_DIR = "fallback"
"""The fallback model's folder inside the primary model's folder."""

FALLBACK_FLAG = "spine_fallback"
LEVEL_UNCERTAIN = "level_uncertain"
UNSURE = frozenset({LEVEL_UNCERTAIN, "orientation_uncertain"})
"""Flags of a fallback reading that does not replace a plausible (level-uncertain) reading of the
primary model. When the primary's reading failed its checks, an unsure fallback reading is used
with its flags: on the gate benchmark that scores 2 of the 4 final-set laterals the primary
refuses, 4 of 12 extended-variety and 7 of 13 family-B ones (AAC-24 within 1 of the truth on 9
of those 13), and lets no synthetic negative through (the view classifier refuses all but a
few before the spine stage; the fallback's readings of the AP, thoracic and pelvis phantoms
that reach it carry these flags)."""
FALLBACK_CODES = frozenset({ErrorCode.IMPLAUSIBLE_SPINE, ErrorCode.SPINE_NOT_FOUND})
"""The primary model's failures that the fallback model is asked about (a body cut by the edge
of the film, ``field_incomplete``, is the film's problem, not the model's)."""


class CheckedSpineModel(Protocol):
    """A spine model whose plausibility checks can be turned off
    (:class:`aacscore.spine.predict.SpineModel`)."""

    model_dir: Path | None

    @property
    def backend(self) -> object: ...

    def weight_files(self) -> list[Path]: ...

    def predict(
        self,
        radiograph: Radiograph,
        anterior_side: str | Side | None = None,
        check: bool = True,
    ) -> SpineResult: ...


@dataclass(frozen=True)
class FallbackSpineModel:
    """The ``primary`` spine model, and the ``fallback`` model asked when it cannot read a film."""

    primary: CheckedSpineModel
    fallback: CheckedSpineModel

    @property
    def model_dir(self) -> Path | None:
        """The primary model's folder (the fallback's is its ``fallback/`` folder)."""
        return self.primary.model_dir

    @property
    def backend(self) -> object:
        """What runs the primary model's networks (the fallback's are loaded alike)."""
        return self.primary.backend

    def weight_files(self) -> list[Path]:
        """Both models' weight (and graph) files."""
        return [*self.primary.weight_files(), *self.fallback.weight_files()]

    def predict(
        self,
        radiograph: Radiograph,
        anterior_side: str | Side | None = None,
        check: bool = True,
    ) -> SpineResult:
        """The primary model's reading, or the fallback's when the primary's fails its checks
        or is level-uncertain and the fallback's passes (flagged ``spine_fallback``; an unsure
        fallback reading only in place of a failed primary reading).

        ``check=False`` returns a reading that fails the checks instead of raising (the
        primary's, unless the fallback's passes).

        Raises:
            SpineError: with ``check``, neither reading passes (the primary's error)."""
        first: SpineResult | None = None
        error: SpineError | None = None
        try:
            first = self.primary.predict(radiograph, anterior_side, check=True)
        except SpineError as e:
            if e.code not in FALLBACK_CODES:
                if check:
                    raise
                return self.primary.predict(radiograph, anterior_side, check=False)
            error = e
        if first is not None and LEVEL_UNCERTAIN not in first.flags:
            return first
        why = (
            str(error.problem) if error is not None else "the primary model's levels are uncertain"
        )
        second: SpineResult | None = None
        try:
            second = self.fallback.predict(radiograph, anterior_side, check=True)
        except SpineError as e:
            log.debug("%s: the fallback spine model failed too: %s", radiograph.source, e)
        if second is None or (first is not None and UNSURE & set(second.flags)):
            if first is not None:
                return first
            assert error is not None
            if check:
                raise error from None
            return self.primary.predict(radiograph, anterior_side, check=False)
        log.info("%s: spine read by the fallback model (%s)", radiograph.source, why)
        reason = f"spine read by the fallback model: {why}"
        return replace(
            second,
            flags=tuple(dict.fromkeys((*second.flags, FALLBACK_FLAG))),
            warnings=tuple(dict.fromkeys((*second.warnings, reason))),
        )


def fallback_folder(model_dir: Path) -> Path | None:
    """``model_dir/fallback`` when it holds a spine model, else None."""
    d = model_dir / FALLBACK_DIR
    return d if (d / "plans.json").is_file() and (d / "unet.safetensors").is_file() else None
