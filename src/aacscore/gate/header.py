"""What the DICOM header says about a film's view, region and modality, before any model runs.

:func:`check_header` reads the attributes that state what a film is (:data:`VIEW_ATTRIBUTES`,
:data:`REGION_ATTRIBUTES`, ``Modality``) and returns a :class:`HeaderEvidence`: the view
(``lateral``, ``ap``, ``pa``, ``oblique``), the region (``lumbar``, ``spine``, ``abdomen``,
``sacrum``, ``chest``, ``thoracic``, ``cervical``, ``pelvis``, ``hip``, ``skull``,
``extremity``, ``breast``, ``dental``, or another body part lower-cased), the modality, every
clue with where it was found, and the refusal the header alone calls for:

- ``not_radiograph``: ``Modality`` is not an X-ray projection (:data:`NON_PROJECTION_MODALITIES`:
  CT, MR, US, NM, PT, SR, ...). Allowed: CR, DX, RF, XA, RG, DF, BMD (lateral DXA
  vertebral-assessment images are scored with AAC-24 too), OT and SC (digitised or converted
  films are common), the non-standard DR, and any modality not listed.
- ``wrong_region``: the region is one of :data:`WRONG_REGIONS` (chest, thoracic or cervical
  spine, pelvis, hip, skull, limbs, breast, teeth).
- ``wrong_view``: the view is AP, PA or oblique.

``BodyPartExamined`` and ``ViewPosition`` (then ``ViewCodeSequence``) are read first and decide
when they are stated (the reason then names any description that says otherwise); the
descriptions (``SeriesDescription``, ``ProtocolName``, ``StudyDescription``, in that order) fill
what they leave open, and a refusal read from one of them needs no other to name the lumbar
spine (or a lateral view): a header that names several regions or views is not refused. Any
refusal can be overridden (``--ignore-header``).

Words are matched whole, after upper-casing and removing accents: ``LAT`` matches in
``L-SPINE LAT`` but not inside another word, ``AP`` only as a word (``AP+LAT`` names
both views and states none). German and a few other common forms are known (``LWS``
Lendenwirbelsaeule, ``BWS``, ``HWS``, ``seitlich``, ``Thorax``, ``Becken``, ``lombaire``...).

:func:`disagrees` compares the evidence with an image classifier's label (see
:data:`LABEL_VIEW_REGION`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aacscore.codes import ErrorCode

if TYPE_CHECKING:
    from aacscore.io.types import RadiographInfo

VIEW_ATTRIBUTES: tuple[str, ...] = (
    "ViewPosition",
    "ViewCodeSequence",
    "SeriesDescription",
    "ProtocolName",
    "StudyDescription",
)
"""Where the view is read, most authoritative first."""
REGION_ATTRIBUTES: tuple[str, ...] = (
    "BodyPartExamined",
    "SeriesDescription",
    "ProtocolName",
    "StudyDescription",
)
"""Where the region is read, most authoritative first."""
STRUCTURED_ATTRIBUTES: frozenset[str] = frozenset(
    {"ViewPosition", "ViewCodeSequence", "BodyPartExamined"}
)
"""Attributes with defined terms: a refusal they call for stands even when a description says
otherwise; a refusal read from a description needs no other description to contradict it."""
RECORDED_ATTRIBUTES: tuple[str, ...] = (
    "Modality",
    "ViewPosition",
    "ViewCodeSequence",
    "BodyPartExamined",
    "ImageLaterality",
    "SeriesDescription",
    "ProtocolName",
    "StudyDescription",
)
"""The attributes recorded as clues (in this order) when present."""

NON_PROJECTION_MODALITIES: frozenset[str] = frozenset(
    {
        "CT", "MR", "US", "NM", "PT", "SR", "SEG", "KO", "PR", "REG", "DOC", "XC", "ES", "OP",
        "OPT", "OCT", "IVOCT", "IVUS", "SM", "GM", "ECG", "EPS", "HD", "RESP", "AU", "BI",
        "RTIMAGE", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "PLAN", "TG", "LS", "BDUS",
        "OAM", "OPM", "OPR", "OPV", "OSS", "SRF", "VA", "XAPS", "RWV", "FID", "IOL", "KER",
        "LEN", "DMS", "M3D", "POS", "STAIN", "TEXTUREMAP", "ASMT", "CTPROTOCOL", "OPTBSV",
        "OPTENF", "RTINTENT", "RTSEGANN", "RTRAD", "CFM", "DOSEMETER",
    }
)  # fmt: skip
"""Modalities that are not an X-ray projection of the body: refused as ``not_radiograph``."""

ACQUISITION_MODALITIES: frozenset[str] = frozenset({"CR", "DX", "DR", "RG", "RF", "XA", "DF"})
"""Modalities of films acquired on an X-ray unit (not OT or SC, which converted films and
screenshots share): a header stating one rules out ``not_radiograph`` for the image classifier
(:attr:`HeaderEvidence.acquired_radiograph`)."""
MODALITY_REGIONS: dict[str, str] = {"MG": "breast", "IO": "dental", "PX": "dental"}
"""Projection X-ray modalities that imply a region other than the spine."""

WRONG_REGIONS: frozenset[str] = frozenset(
    {"chest", "thoracic", "cervical", "pelvis", "hip", "skull", "extremity", "breast", "dental"}
)
"""Regions refused as ``wrong_region``."""
LUMBAR_FAMILY: frozenset[str] = frozenset({"lumbar", "spine", "abdomen"})
"""Regions whose films show the lumbar spine (never refused; any of them among the clues
vetoes a region refusal)."""
WRONG_VIEWS: frozenset[str] = frozenset({"ap", "pa", "oblique"})
"""Views refused as ``wrong_view``."""

# Whole words (after upper-casing, accents removed, split at anything not a letter or digit).
_REGION_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("LUMBAR", "LSPINE", "LWS", "LUMBOSACRAL", "LUMBAL", "LUMBALE", "LOMBAIRE", "LOMBARE",
         "LUMBARE", "LENDENWIRBELSAULE", "LUMBALWIRBELSAULE", "LS", "LSP"),
        "lumbar",
    ),
    **dict.fromkeys(
        ("SPINE", "WHOLESPINE", "WIRBELSAULE", "WS", "TLSPINE", "THORACOLUMBAR", "SCOLIOSIS",
         "SKOLIOSE", "COLUMNA", "RACHIS"),
        "spine",
    ),
    **dict.fromkeys(("ABDOMEN", "ABD", "KUB", "ABDOMINAL", "BAUCH"), "abdomen"),
    **dict.fromkeys(("SACRUM", "SSPINE", "COCCYX", "SAKRUM", "KREUZBEIN"), "sacrum"),
    **dict.fromkeys(
        ("CHEST", "THORAX", "TORAX", "LUNG", "LUNGS", "CXR", "RIB", "RIBS", "STERNUM", "POUMON"),
        "chest",
    ),
    **dict.fromkeys(
        ("TSPINE", "THORACIC", "DORSAL", "BWS", "BRUSTWIRBELSAULE", "DORSALE"), "thoracic"
    ),
    **dict.fromkeys(
        ("CSPINE", "CERVICAL", "HWS", "NECK", "HALSWIRBELSAULE", "CERVICALE"), "cervical"
    ),
    **dict.fromkeys(("PELVIS", "BECKEN", "BASSIN", "PELVIC"), "pelvis"),
    **dict.fromkeys(("HIP", "HIPS", "HUFTE", "HANCHE"), "hip"),
    **dict.fromkeys(
        ("SKULL", "HEAD", "SCHADEL", "SINUS", "SINUSES", "FACE", "MANDIBLE", "CRANE"), "skull"
    ),
    **dict.fromkeys(
        ("HAND", "HANDS", "WRIST", "ELBOW", "ARM", "FOREARM", "HUMERUS", "SHOULDER", "CLAVICLE",
         "FINGER", "FINGERS", "THUMB", "KNEE", "KNEES", "LEG", "LEGS", "FEMUR", "TIBIA", "FIBULA",
         "ANKLE", "FOOT", "FEET", "TOE", "TOES", "HEEL", "CALCANEUS", "EXTREMITY", "UPREXM",
         "LOWEXM", "SCHULTER", "KNIE", "FUSS", "HANDGELENK", "ELLENBOGEN", "SPRUNGGELENK"),
        "extremity",
    ),
    **dict.fromkeys(("BREAST", "MAMMO", "MAMMOGRAPHY"), "breast"),
    **dict.fromkeys(("TEETH", "DENTAL", "JAW"), "dental"),
}  # fmt: skip
_REGION_PAIRS: dict[tuple[str, str], str] = {
    ("L", "SPINE"): "lumbar",
    ("T", "SPINE"): "thoracic",
    ("C", "SPINE"): "cervical",
    ("S", "SPINE"): "sacrum",
    ("TL", "SPINE"): "spine",
    ("L", "WS"): "lumbar",
    ("B", "WS"): "thoracic",
    ("H", "WS"): "cervical",
}
"""Two-word forms (``L-SPINE``, ``L SPINE``, ``L.WS``); their second word alone is ``spine``."""
_VIEW_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("LAT", "LATERAL", "LL", "RL", "LLAT", "RLAT", "LATERALE", "LATERAAL", "LATERALIS",
         "SEITLICH", "SEITL", "PROFIL", "PROFILE", "XTABLE"),
        "lateral",
    ),
    **dict.fromkeys(("AP", "ANTEROPOSTERIOR", "FRONTAL", "FRONT"), "ap"),
    **dict.fromkeys(("PA", "POSTEROANTERIOR"), "pa"),
    **dict.fromkeys(
        ("OBL", "OBLIQUE", "LAO", "RAO", "LPO", "RPO", "RLO", "LLO", "SCHRAG"), "oblique"
    ),
}  # fmt: skip
_VIEW_PHRASES: dict[str, str] = {
    "ANTEROPOSTERIOR": "ap",
    "POSTEROANTERIOR": "pa",
}
"""Forms written with a hyphen or a space (``antero-posterior``), matched with them removed."""

LABEL_VIEW_REGION: dict[str, tuple[frozenset[str] | None, frozenset[str] | None]] = {
    "lateral_lumbar": (frozenset({"lateral"}), frozenset({"lumbar", "spine", "abdomen"})),
    "ap_lumbar": (frozenset({"ap", "pa"}), frozenset({"lumbar", "spine", "abdomen", "sacrum"})),
    "lumbar_spot": (None, frozenset({"lumbar", "spine", "abdomen", "sacrum"})),
    "chest": (None, frozenset({"chest", "thoracic"})),
    "lateral_thoracic": (frozenset({"lateral"}), frozenset({"thoracic", "spine", "chest"})),
    "cervical": (None, frozenset({"cervical", "spine"})),
    "pelvis_hip": (None, frozenset({"pelvis", "hip", "sacrum", "abdomen"})),
    "other_body_part": (None, frozenset({"skull", "extremity", "breast", "dental"})),
    "not_radiograph": (frozenset(), frozenset()),
}
"""For each image-classifier label, the header views and regions that agree with it (None: any
view agrees). A header region outside the known vocabulary never disagrees."""
KNOWN_REGIONS: frozenset[str] = frozenset(_REGION_WORDS.values()) | frozenset(
    MODALITY_REGIONS.values()
)


@dataclass(frozen=True)
class HeaderClue:
    """One attribute of the header: its text, and the view and region read from it."""

    attribute: str
    value: str
    view: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class HeaderEvidence:
    """What the header says (None: not stated), the clues behind it, and the refusal it calls
    for (``code`` None: none; ``reason`` names the attributes, e.g. ``the DICOM header says
    ViewPosition=AP (not a lateral film)``)."""

    view: str | None = None
    region: str | None = None
    modality: str | None = None
    clues: tuple[HeaderClue, ...] = ()
    code: ErrorCode | None = None
    reason: str = ""

    @property
    def acquired_radiograph(self) -> bool:
        """Whether the header says the film was acquired on an X-ray unit
        (:data:`ACQUISITION_MODALITIES`)."""
        return self.modality in ACQUISITION_MODALITIES

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "view": self.view,
            "region": self.region,
            "modality": self.modality,
            "code": None if self.code is None else self.code.value,
            "reason": self.reason,
            "clues": [
                {"attribute": c.attribute, "value": c.value, "view": c.view, "region": c.region}
                for c in self.clues
            ],
        }


def check_header(info: RadiographInfo) -> HeaderEvidence:
    """The evidence of ``info.header`` (empty evidence for inputs without a DICOM header)."""
    header = info.header
    if header is None:
        return HeaderEvidence()
    clues = tuple(c for a in RECORDED_ATTRIBUTES if (c := _clue(header, a)) is not None)
    by_attr = {c.attribute: c for c in clues}
    modality = by_attr["Modality"].value.upper() if "Modality" in by_attr else None
    view_clue = _first(by_attr, VIEW_ATTRIBUTES, "view")
    region_clue = _first(by_attr, REGION_ATTRIBUTES, "region")
    view = view_clue.view if view_clue is not None else None
    region = region_clue.region if region_clue is not None else None
    if region is None and modality in MODALITY_REGIONS:
        region = MODALITY_REGIONS[modality]
    evidence = HeaderEvidence(view=view, region=region, modality=modality, clues=clues)
    if modality in NON_PROJECTION_MODALITIES:
        return _refuse(
            evidence,
            ErrorCode.NOT_RADIOGRAPH,
            f"the DICOM header says Modality={modality} (not an X-ray projection film)",
        )
    if region in WRONG_REGIONS:
        if region_clue is None:
            return _refuse(
                evidence,
                ErrorCode.WRONG_REGION,
                f"the DICOM header says Modality={modality} (a {region} film, not the lumbar "
                "spine)",
            )
        others = [c for c in clues if c.region in LUMBAR_FAMILY]
        if region_clue.attribute == "BodyPartExamined" or not others:
            return _refuse(
                evidence,
                ErrorCode.WRONG_REGION,
                f"the DICOM header says {_says(region_clue)} (a {region} film, not the lumbar "
                f"spine){_despite(others)}",
            )
    if view in WRONG_VIEWS and view_clue is not None:
        others = [c for c in clues if c.view == "lateral"]
        if view_clue.attribute in STRUCTURED_ATTRIBUTES or not others:
            return _refuse(
                evidence,
                ErrorCode.WRONG_VIEW,
                f"the DICOM header says {_says(view_clue)} (not a lateral film){_despite(others)}",
            )
    return evidence


def disagrees(evidence: HeaderEvidence, view_label: str) -> bool:
    """True when the header states a view or region that contradicts the image classifier's
    ``view_label`` (one of :data:`LABEL_VIEW_REGION`). A header stating neither never
    disagrees; nor does a region outside the known vocabulary."""
    try:
        views, regions = LABEL_VIEW_REGION[view_label]
    except KeyError:
        raise ValueError(
            f"unknown view label {view_label!r}; expected one of {tuple(LABEL_VIEW_REGION)}"
        ) from None
    if evidence.view is not None and views is not None and evidence.view not in views:
        return True
    return (
        evidence.region is not None
        and evidence.region in KNOWN_REGIONS
        and regions is not None
        and evidence.region not in regions
    )


# --- reading the attributes ------------------------------------------------------------------


def _clue(header: Any, attribute: str) -> HeaderClue | None:
    try:
        raw = header.get(attribute)
    except Exception:  # a malformed element must not stop the reading
        return None
    if raw is None:
        return None
    if attribute == "ViewCodeSequence":
        text = " ".join(str(getattr(item, "CodeMeaning", "") or "") for item in _items(raw)).strip()
    else:
        value = getattr(raw, "value", raw)
        text = (
            "\\".join(str(v) for v in value)
            if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
            else str(value)
        ).strip()
    if not text:
        return None
    if attribute in ("Modality", "ImageLaterality"):
        return HeaderClue(attribute, text)
    words = _words(text)
    view = _view(words, text) if attribute in VIEW_ATTRIBUTES else None
    region = _region(words) if attribute in REGION_ATTRIBUTES else None
    if attribute == "BodyPartExamined" and region is None:
        region = re.sub(r"[^a-z0-9]+", "_", _fold(text).lower()).strip("_") or None
    return HeaderClue(attribute, text, view, region)


def _items(seq: Any) -> Iterable[Any]:
    try:
        return list(seq)
    except TypeError:
        return []


def _fold(text: str) -> str:
    """Upper-case without accents (``Lendenwirbelsäule`` -> ``LENDENWIRBELSAULE``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Z0-9]+", _fold(text))


def _view(words: list[str], text: str) -> str | None:
    """The single view the words name (None: none, or several)."""
    found = {_VIEW_WORDS[w] for w in words if w in _VIEW_WORDS}
    compact = re.sub(r"[^A-Z]+", "", _fold(text))
    found |= {v for phrase, v in _VIEW_PHRASES.items() if phrase in compact}
    return found.pop() if len(found) == 1 else None


def _region(words: list[str]) -> str | None:
    """The most specific region the words name: the spine segment over ``spine`` (None: none,
    or several different ones)."""
    found: list[str] = []
    skip = False
    for a, b in zip(words, [*words[1:], ""], strict=True):
        if skip:
            skip = False
            continue
        if (a, b) in _REGION_PAIRS:
            found.append(_REGION_PAIRS[(a, b)])
            skip = True
        elif a in _REGION_WORDS:
            found.append(_REGION_WORDS[a])
    distinct = set(found)
    if len(distinct) > 1:
        distinct.discard("spine")  # "LUMBAR SPINE" is lumbar
    if distinct == {"lumbar", "sacrum"}:
        distinct = {"lumbar"}  # "lumbosacral", "L-spine and sacrum"
    return distinct.pop() if len(distinct) == 1 else None


def _first(
    by_attr: dict[str, HeaderClue], attributes: tuple[str, ...], what: str
) -> HeaderClue | None:
    for attribute in attributes:
        clue = by_attr.get(attribute)
        if clue is not None and getattr(clue, what) is not None:
            return clue
    return None


def _says(clue: HeaderClue) -> str:
    return f"{clue.attribute}={clue.value}"


def _despite(others: list[HeaderClue]) -> str:
    return f", although {' and '.join(_says(c) for c in others)}" if others else ""


def _refuse(evidence: HeaderEvidence, code: ErrorCode, reason: str) -> HeaderEvidence:
    return HeaderEvidence(
        view=evidence.view,
        region=evidence.region,
        modality=evidence.modality,
        clues=evidence.clues,
        code=code,
        reason=reason,
    )
