"""Machine-readable error codes and flags: the closed vocabularies of ``results.csv``.

A failed case carries one :class:`ErrorCode` (column ``error_code``) beside its human message
(column ``error``). A scored case carries zero or more flags (column ``qc_flags``, joined by
``;``); any flag makes its status ``warning`` (needs a human look). :data:`ERROR_CODES` and
:data:`FLAGS` say what each one means; the README's table is built from them.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a case was refused (not scored)."""

    UNREADABLE = "unreadable"
    NOT_RADIOGRAPH = "not_radiograph"
    WRONG_VIEW = "wrong_view"
    WRONG_REGION = "wrong_region"
    FIELD_INCOMPLETE = "field_incomplete"
    BAND_OUTSIDE_FILM = "band_outside_film"
    SPINE_NOT_FOUND = "spine_not_found"
    IMPLAUSIBLE_SPINE = "implausible_spine"
    BAND_FAILED = "band_failed"
    SCORE_FAILED = "score_failed"
    INTERNAL_ERROR = "internal_error"
    WORKER_FAILED = "worker_failed"

    def __str__(self) -> str:
        return self.value


ERROR_CODES: dict[ErrorCode, str] = {
    ErrorCode.UNREADABLE: "the file could not be read or decoded as an image",
    ErrorCode.NOT_RADIOGRAPH: "not a radiograph (a photograph, drawing, screenshot, label map, "
    "an aacscore output, or a non-X-ray modality)",
    ErrorCode.WRONG_VIEW: "a lumbar film, but not a lateral projection (AP/PA), by the image "
    "or the DICOM header",
    ErrorCode.WRONG_REGION: "a radiograph of another region (chest, thoracic or cervical spine, "
    "pelvis/hip, limbs, skull), by the image or the DICOM header",
    ErrorCode.FIELD_INCOMPLETE: "L1-L4 with the T12/L1 and L4/L5 discs are not all on the film, "
    "or neither the sacrum nor T12 is in view to identify the levels (spot views)",
    ErrorCode.BAND_OUTSIDE_FILM: "less than 75 % of the aortic band in front of L1-L4 is inside "
    "the image",
    ErrorCode.SPINE_NOT_FOUND: "the lumbar vertebrae were not found",
    ErrorCode.IMPLAUSIBLE_SPINE: "vertebrae were found but their sizes, order or spacing are "
    "implausible",
    ErrorCode.BAND_FAILED: "the aortic band could not be cut from the spine geometry",
    ErrorCode.SCORE_FAILED: "the score model could not grade the band",
    ErrorCode.INTERNAL_ERROR: "an unexpected error in aacscore (a bug: see the case JSON's "
    "traceback)",
    ErrorCode.WORKER_FAILED: "the worker process scoring the case died",
}
"""What each error code means."""


FLAGS: dict[str, str] = {
    "spacing_unknown": "no usable pixel spacing; the scale was estimated from vertebral size",
    "spacing_inconsistent": "the header's pixel spacing made every L1-L4 body smaller (or "
    "larger) than adult lumbar bodies: it was ignored and the scale estimated from vertebral "
    "size",
    "low_contrast": "the central 98 % of grey values spans less than 0.12 of the full range",
    "saturated": "more than 25 % of the central half of the film is at the darkest or brightest "
    "grey level (collimation borders outside it are normal and ignored)",
    "low_resolution": "the film has fewer than 512 pixels along one side",
    "reader_warning": "the reader corrected or ignored a header value (see the case JSON)",
    "header_ignored": "the DICOM header said this is not a lateral lumbar film; scored because "
    "--ignore-header was given",
    "header_image_disagree": "the DICOM header names another view or region than the image's: "
    "lateral lumbar, or the view classifier's class when it doubts that (p_lateral below 0.5)",
    "view_uncertain": "the view classifier is not confident that this is a lateral lumbar film "
    "(p_lateral below 0.5), or refused it and --ignore-view was given",
    "orientation_uncertain": "the anterior side of the patient could not be told with confidence",
    "level_uncertain": "the level labels L1-L4 rest on weak evidence (T12 or the sacrum barely "
    "found, or a level was inferred)",
    "spine_fallback": "the primary spine model's reading failed its checks or had uncertain "
    "levels, and the fallback spine model (trained on both simulator families) read the film",
    "fracture_suspected": "an L1-L4 body's anterior height is less than 80 % of its posterior "
    "height, or its posterior height less than 80 % of its neighbours' (possible wedge or crush "
    "deformity)",
    "band_partly_outside": "75-90 % of the aortic band is inside the image",
    "low_quality": "the familiarity score (quality) is below its threshold: the models are on "
    "unfamiliar ground; scored, but needs review",
}
"""What each flag means. Every flag makes a scored case's status ``warning``."""


def markdown_table() -> str:
    """The README's table of error codes and flags (Markdown), built from :data:`ERROR_CODES`
    and :data:`FLAGS`."""
    lines = ["| `error_code` | meaning |", "|---|---|"]
    lines += [f"| `{code.value}` | {text} |" for code, text in ERROR_CODES.items()]
    lines += ["", "| flag (`qc_flags`) | meaning |", "|---|---|"]
    lines += [f"| `{flag}` | {text} |" for flag, text in FLAGS.items()]
    return "\n".join(lines) + "\n"


class ScoringError(ValueError):
    """A film that cannot be scored, with its :class:`ErrorCode`; the message names the film."""

    def __init__(self, code: ErrorCode, problem: str, source: str | None = None) -> None:
        self.code = ErrorCode(code)
        self.problem = problem
        self.source = source
        super().__init__(f"{source}: {problem}" if source else problem)
