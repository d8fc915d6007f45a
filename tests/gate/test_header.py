"""The DICOM header's evidence (:mod:`aacscore.gate.header`): every refusal rule, the keyword
matching, and the comparison with the image classifier's label."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from aacscore.codes import ErrorCode
from aacscore.gate.header import (
    LABEL_VIEW_REGION,
    HeaderEvidence,
    check_header,
    disagrees,
)
from aacscore.io.types import RadiographInfo


def _info(header: Dataset | None, source: str = "dicom") -> RadiographInfo:
    return RadiographInfo(source, "MONOCHROME2", 12, (600, 600), (0.2, 0.2), header=header)


def _check(**attrs: Any) -> HeaderEvidence:
    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return check_header(_info(ds))


def _lateral_lumbar(**changes: Any) -> HeaderEvidence:
    """The simulator's header (DX, LSPINE, lateral), with ``changes``."""
    attrs: dict[str, Any] = {
        "Modality": "DX",
        "BodyPartExamined": "LSPINE",
        "ViewPosition": "LL",
        "SeriesDescription": "L-SPINE LAT",
        "StudyDescription": "XR LUMBAR SPINE",
    }
    attrs.update(changes)
    return _check(**{k: v for k, v in attrs.items() if v is not None})


def test_no_header_says_nothing() -> None:
    assert check_header(_info(None, "png")) == HeaderEvidence()
    empty = check_header(_info(Dataset()))
    assert empty == HeaderEvidence() and empty.code is None and empty.reason == ""


def test_a_lateral_lumbar_header_is_not_refused() -> None:
    ev = _lateral_lumbar()
    assert (ev.view, ev.region, ev.modality, ev.code) == ("lateral", "lumbar", "DX", None)
    attrs = [c.attribute for c in ev.clues]
    assert attrs == [
        "Modality",
        "ViewPosition",
        "BodyPartExamined",
        "SeriesDescription",
        "StudyDescription",
    ]
    by = {c.attribute: c for c in ev.clues}
    assert by["ViewPosition"].view == "lateral" and by["BodyPartExamined"].region == "lumbar"
    assert by["SeriesDescription"].view == "lateral" and by["SeriesDescription"].region == "lumbar"


@pytest.mark.parametrize("view", ["AP", "PA"])
def test_view_position_ap_or_pa_is_the_wrong_view(view: str) -> None:
    ev = _lateral_lumbar(ViewPosition=view)
    assert ev.code is ErrorCode.WRONG_VIEW and ev.view == view.lower()
    # the structured attribute decides; the description that says otherwise is named
    assert ev.reason == (
        f"the DICOM header says ViewPosition={view} (not a lateral film), although "
        "SeriesDescription=L-SPINE LAT"
    )


def test_oblique_is_the_wrong_view() -> None:
    assert _lateral_lumbar(ViewPosition="RLO").code is ErrorCode.WRONG_VIEW


@pytest.mark.parametrize(
    ("part", "region"),
    [
        ("CHEST", "chest"),
        ("THORAX", "chest"),
        ("CSPINE", "cervical"),
        ("TSPINE", "thoracic"),
        ("PELVIS", "pelvis"),
        ("HIP", "hip"),
        ("SKULL", "skull"),
        ("KNEE", "extremity"),
        ("HAND", "extremity"),
    ],
)
def test_body_part_of_another_region_is_the_wrong_region(part: str, region: str) -> None:
    ev = _lateral_lumbar(BodyPartExamined=part)
    assert ev.code is ErrorCode.WRONG_REGION and ev.region == region
    assert ev.reason.startswith(f"the DICOM header says BodyPartExamined={part} (a {region} film")


def test_the_region_is_refused_before_the_view() -> None:
    ev = _lateral_lumbar(BodyPartExamined="CHEST", ViewPosition="PA")
    assert ev.code is ErrorCode.WRONG_REGION and ev.view == "pa"


@pytest.mark.parametrize(
    ("part", "region"),
    [
        ("LSPINE", "lumbar"),
        ("LUMBAR SPINE", "lumbar"),
        ("L-SPINE", "lumbar"),
        ("LWS", "lumbar"),
        ("Lendenwirbelsäule", "lumbar"),
        ("SPINE", "spine"),
        ("ABDOMEN", "abdomen"),
        ("WHOLEBODY", "wholebody"),  # another body part: normalised, not refused
    ],
)
@pytest.mark.filterwarnings("ignore:.*VR CS:UserWarning")  # real headers break the VR rules too
def test_lumbar_spine_abdomen_and_unknown_parts_are_not_refused(part: str, region: str) -> None:
    ev = _check(Modality="CR", BodyPartExamined=part, ViewPosition="LATERAL")
    assert ev.region == region and ev.code is None and ev.view == "lateral"


@pytest.mark.parametrize(
    ("description", "view", "region"),
    [
        ("LUMBAR SPINE LAT", "lateral", "lumbar"),
        ("L-SPINE LAT", "lateral", "lumbar"),
        ("LWS seitlich", "lateral", "lumbar"),
        ("LWS in 2 Ebenen", None, "lumbar"),
        ("LS SPINE LATERAL", "lateral", "lumbar"),
        ("LUMBAR SPINE AP", "ap", "lumbar"),
        ("LUMBAR SPINE AP+LAT", None, "lumbar"),  # both views named: neither stated
        ("L-SPINE AP/LAT", None, "lumbar"),
        ("CHEST PA", "pa", "chest"),
        ("Thorax p.a.", None, "chest"),  # "p.a." is two letters, not the word PA
        ("C-SPINE LAT", "lateral", "cervical"),
        ("BWS seitl.", "lateral", "thoracic"),
        ("Lumbar spine antero-posterior", "ap", "lumbar"),
        ("PLATELET", None, None),  # LAT and AP inside another word match nothing
        ("LATERALIS CAPSULE", "lateral", None),
        ("TAP", None, None),
        ("APPENDIX", None, None),
    ],
)
def test_description_keywords_are_whole_words(
    description: str, view: str | None, region: str | None
) -> None:
    ev = _check(SeriesDescription=description)
    assert (ev.view, ev.region) == (view, region), ev.clues


def test_descriptions_refuse_only_without_a_contradicting_one() -> None:
    ev = _check(Modality="CR", SeriesDescription="CHEST PA")
    assert ev.code is ErrorCode.WRONG_REGION and "SeriesDescription=CHEST PA" in ev.reason
    ev = _check(Modality="CR", SeriesDescription="LUMBAR SPINE AP")
    assert ev.code is ErrorCode.WRONG_VIEW and "SeriesDescription=LUMBAR SPINE AP" in ev.reason
    # a frontal series in a study whose description says lateral: not refused
    ev = _check(SeriesDescription="AP", StudyDescription="LSPINE LATERAL")
    assert ev.view == "ap" and ev.code is None
    # a chest series in a lumbar study: not refused
    ev = _check(SeriesDescription="CHEST", ProtocolName="L-SPINE")
    assert ev.region == "chest" and ev.code is None
    # ...but BodyPartExamined decides over the descriptions
    ev = _check(BodyPartExamined="CHEST", SeriesDescription="LUMBAR SPINE LAT")
    assert ev.code is ErrorCode.WRONG_REGION and ev.region == "chest"
    # the structured attribute comes first when it is stated
    ev = _check(ViewPosition="LL", SeriesDescription="AP")
    assert ev.view == "lateral" and ev.code is None


def test_view_code_sequence_is_read() -> None:
    item = Dataset()
    item.CodeValue = "399348003"
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = "antero-posterior"
    ev = _check(Modality="DX", ViewCodeSequence=[item])
    assert ev.view == "ap" and ev.code is ErrorCode.WRONG_VIEW
    assert "ViewCodeSequence=antero-posterior" in ev.reason
    item.CodeMeaning = "left lateral"
    assert _check(ViewCodeSequence=[item]).view == "lateral"


@pytest.mark.parametrize("modality", ["MR", "CT", "US", "NM", "PT", "SR", "XC"])
def test_a_non_projection_modality_is_not_a_radiograph(modality: str) -> None:
    ev = _lateral_lumbar(Modality=modality)
    assert ev.code is ErrorCode.NOT_RADIOGRAPH and ev.modality == modality
    assert ev.reason == (
        f"the DICOM header says Modality={modality} (not an X-ray projection film)"
    )


@pytest.mark.parametrize("modality", ["CR", "DX", "DR", "RF", "XA", "OT", "SC", "BMD", "ZZ"])
def test_projection_and_converted_modalities_are_allowed(modality: str) -> None:
    assert _lateral_lumbar(Modality=modality).code is None


@pytest.mark.parametrize(
    ("modality", "acquired"),
    [("CR", True), ("DX", True), ("DR", True), ("RF", True), ("XA", True), ("OT", False),
     ("SC", False), ("BMD", False), (None, False)],
)  # fmt: skip
def test_an_acquisition_modality_says_the_film_is_a_radiograph(
    modality: str | None, acquired: bool
) -> None:
    assert _lateral_lumbar(Modality=modality).acquired_radiograph is acquired
    assert not check_header(_info(None, "png")).acquired_radiograph


def test_mammography_is_another_region() -> None:
    ev = _check(Modality="MG")
    assert ev.region == "breast" and ev.code is ErrorCode.WRONG_REGION
    assert "Modality=MG" in ev.reason


def test_image_laterality_is_recorded_without_a_rule() -> None:
    ev = _lateral_lumbar(ImageLaterality="L")
    assert ("ImageLaterality", "L") in [(c.attribute, c.value) for c in ev.clues]
    assert ev.code is None


def test_as_dict_is_json_ready() -> None:
    d = _lateral_lumbar(ViewPosition="AP").as_dict()
    assert d["code"] == "wrong_view" and d["view"] == "ap" and d["region"] == "lumbar"
    assert d["clues"][1] == {
        "attribute": "ViewPosition",
        "value": "AP",
        "view": "ap",
        "region": None,
    }


# --- disagrees -------------------------------------------------------------------------------


def test_a_header_without_view_or_region_never_disagrees() -> None:
    for label in LABEL_VIEW_REGION:
        assert not disagrees(HeaderEvidence(), label)
        assert not disagrees(HeaderEvidence(modality="DX"), label)


@pytest.mark.parametrize(
    ("view", "region", "label", "expected"),
    [
        ("lateral", "lumbar", "lateral_lumbar", False),
        ("lateral", "lumbar", "ap_lumbar", True),
        ("ap", "lumbar", "lateral_lumbar", True),
        ("ap", "lumbar", "ap_lumbar", False),
        ("pa", None, "ap_lumbar", False),
        ("lateral", None, "lumbar_spot", False),
        (None, "lumbar", "chest", True),
        (None, "chest", "chest", False),
        (None, "chest", "lateral_lumbar", True),
        ("lateral", "thoracic", "lateral_thoracic", False),
        ("lateral", "lumbar", "lateral_thoracic", True),
        (None, "spine", "lateral_lumbar", False),
        (None, "spine", "cervical", False),
        (None, "abdomen", "lateral_lumbar", False),
        (None, "hip", "pelvis_hip", False),
        (None, "lumbar", "pelvis_hip", True),
        (None, "extremity", "other_body_part", False),
        (None, "lumbar", "other_body_part", True),
        ("lateral", None, "not_radiograph", True),
        (None, "wholebody", "lateral_lumbar", False),  # an unknown region cannot disagree
    ],
)
def test_disagrees_with_the_classifier_label(
    view: str | None, region: str | None, label: str, expected: bool
) -> None:
    assert disagrees(HeaderEvidence(view=view, region=region), label) is expected


def test_disagrees_with_real_evidence_and_unknown_labels() -> None:
    ev = _lateral_lumbar(ViewPosition="AP")
    assert disagrees(ev, "lateral_lumbar") and not disagrees(ev, "ap_lumbar")
    assert not disagrees(_lateral_lumbar(), "lateral_lumbar")
    with pytest.raises(ValueError, match="unknown view label"):
        disagrees(ev, "sideways")
