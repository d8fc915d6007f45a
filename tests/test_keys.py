import pytest

from aacscore.keys import case_key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("/data/p1/P001.dcm", "P001"),
        ("P001.png", "P001"),
        ("P001.DCM.gz", "P001"),
        ("scan.nii.gz", "scan"),
        ("1.2.840.113619.2.55", "1.2.840.113619.2.55"),
        ("1.2.840.113619.2.55.dcm", "1.2.840.113619.2.55"),
        (r"C:\films\P002.JPG", "P002"),
        ("batch.zip:sub/IM0001.dcm", "IM0001"),
        ("batch.zip!IM0001", "IM0001"),
        ("  P003.tiff ", "P003"),
        ("P004", "P004"),
        (".dcm", ".dcm"),
        # a name that is only a suffix is kept whole (also a compression suffix)
        (".gz", ".gz"),
        (".DCM.gz", ".DCM"),
        ("", ""),
        (17, "17"),
    ],
)
def test_case_key(value: object, key: str) -> None:
    assert case_key(value) == key


def test_case_key_same_for_path_spellings() -> None:
    assert case_key("out/../x/P001.dcm") == case_key("P001.DCM") == "P001"
