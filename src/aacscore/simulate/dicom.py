"""DICOM writer for simulated cases: CR or DX (for presentation) with a realistic header.

Header content: synthetic patient (``SIM^CASE_000001``, fixed fictional birth date and sex), UIDs
from :func:`pydicom.uid.generate_uid` with a deterministic entropy source (seed, index, purpose),
Modality CR/DX, fictional Manufacturer/model, BodyPartExamined ``LSPINE``, ViewPosition
``LL``/``RL``/``LATERAL``, PatientOrientation matching the anterior side, PixelSpacing (CR) or
ImagerPixelSpacing + EstimatedRadiographicMagnificationFactor (DX, with PixelSpacing present in
about half of the files; ``ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor`` equals
the true spacing), PhotometricInterpretation MONOCHROME1/2, BitsAllocated 16, BitsStored 10-16,
HighBit, optional RescaleSlope/Intercept and WindowCenter/Width, acquisition values (kVp, mAs,
SID), BurnedInAnnotation. Pixel data are written uncompressed (explicit VR little endian).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

if TYPE_CHECKING:
    from aacscore.simulate.case import SimulatedCase

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
MANUFACTURERS: tuple[tuple[str, str], ...] = (
    ("Simulix Imaging", "SX-DR 4000"),
    ("Phantom Medical Systems", "PMS Digital CR"),
    ("Northwind Radiology", "NW Flat 43"),
    ("Acme X-Ray", "AXR-900"),
)


def _uid(case: SimulatedCase, purpose: str) -> str:
    return str(
        generate_uid(entropy_srcs=["aacscore-simulate", str(case.seed), str(case.index), purpose])
    )


def header_values(case: SimulatedCase) -> dict[str, Any]:
    """Deterministic header choices for a case (drawn from its own seed/index)."""
    rng = np.random.default_rng(np.random.SeedSequence([case.seed, case.index, 7]))
    man = MANUFACTURERS[int(rng.integers(0, len(MANUFACTURERS)))]
    date = _dt.date(2015, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 3650)))
    emf = float(np.round(rng.uniform(1.08, 1.25), 3))
    sid = float(np.round(rng.choice([1000.0, 1150.0, 1500.0, 1800.0]), 1))
    return {
        "manufacturer": man[0],
        "model": man[1],
        "date": date.strftime("%Y%m%d"),
        "time": f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}00",
        "emf": emf,
        "sid": sid,
        "kvp": float(np.round(rng.uniform(80, 105))),
        "mas": float(np.round(rng.uniform(20, 120), 1)),
        "view": str(rng.choice(["LL", "RL", "LATERAL"])),
        "pixel_spacing_in_dx": bool(rng.random() < 0.5),
        "rescale": bool(rng.random() < 0.5),
        "intercept": float(rng.choice([0.0, 0.0, -1024.0])),
        "window": bool(rng.random() < 0.6),
        "birth": f"19{int(rng.integers(25, 75))}0101",
    }


def build_dataset(case: SimulatedCase) -> Dataset:
    """The DICOM dataset (with file meta) of a simulated case."""
    hv = header_values(case)
    modality = case.modality
    sop_class = CR_STORAGE if modality == "CR" else DX_STORAGE
    sop_uid = _uid(case, "sop")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"] if modality == "CR" else ["ORIGINAL", "PRIMARY", ""]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = hv["date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = hv["time"]
    ds.AccessionNumber = f"SIM{case.seed:04d}{case.index:06d}"
    ds.Modality = modality
    ds.Manufacturer = hv["manufacturer"]
    ds.ManufacturerModelName = hv["model"]
    ds.InstitutionName = "Simulated Hospital"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "XR LUMBAR SPINE"
    ds.SeriesDescription = "L-SPINE LAT"
    ds.PatientName = f"SIM^CASE_{case.index:06d}"
    ds.PatientID = f"SIM{case.seed:04d}-{case.index:06d}"
    ds.PatientBirthDate = hv["birth"]
    ds.PatientSex = str(case.params["anatomy"].get("sex", "O"))
    ds.PatientIdentityRemoved = "YES"
    ds.BodyPartExamined = "LSPINE"
    ds.ViewPosition = hv["view"]
    ds.KVP = hv["kvp"]
    ds.Exposure = int(hv["mas"])
    ds.DistanceSourceToDetector = hv["sid"]
    ds.DistanceSourceToPatient = round(hv["sid"] / hv["emf"], 1)
    ds.StudyInstanceUID = _uid(case, "study")
    ds.SeriesInstanceUID = _uid(case, "series")
    ds.FrameOfReferenceUID = _uid(case, "frame")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["A", "F"] if case.anterior_side == "right" else ["P", "F"]
    ds.BurnedInAnnotation = "YES" if case.params.get("overlays") else "NO"
    sp = float(case.spacing_mm[0])
    if modality == "CR":
        ds.PixelSpacing = [round(sp, 6), round(float(case.spacing_mm[1]), 6)]
    else:
        emf = hv["emf"]
        ds.ImagerPixelSpacing = [round(sp * emf, 6), round(float(case.spacing_mm[1]) * emf, 6)]
        ds.EstimatedRadiographicMagnificationFactor = emf
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PresentationLUTShape = "INVERSE" if case.photometric == "MONOCHROME1" else "IDENTITY"
        if hv["pixel_spacing_in_dx"]:
            ds.PixelSpacing = [round(sp, 6), round(float(case.spacing_mm[1]), 6)]
            ds.PixelSpacingCalibrationType = "GEOMETRY"
    bits = case.bits_stored
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = case.photometric
    ds.Rows, ds.Columns = int(case.stored.shape[0]), int(case.stored.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1 if case.photometric == "MONOCHROME1" else 1
    slope, intercept = 1.0, 0.0
    if hv["rescale"] or modality == "CR":
        intercept = hv["intercept"] if hv["rescale"] else 0.0
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.RescaleType = "US"
    if hv["window"]:
        maxv = (1 << bits) - 1
        ds.WindowCenter = round(maxv / 2.0 * slope + intercept, 1)
        ds.WindowWidth = round(maxv * slope, 1)
        ds.VOILUTFunction = "LINEAR"
    ds.PixelData = np.ascontiguousarray(case.stored, dtype="<u2").tobytes()
    return ds


def write_dicom(case: SimulatedCase, path: str | Path) -> Path:
    """Write the case's stored pixels and header to ``path``."""
    p = Path(path)
    ds = build_dataset(case)
    ds.save_as(p, enforce_file_format=True)
    return p
