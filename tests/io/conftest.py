"""Fixtures for the reader tests: a synthetic DICOM writer and pydicom's real test files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from aacscore.io import Radiograph, read_radiograph

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def stored_ramp(rows: int, cols: int, bits: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """Deterministic test image: a diagonal ramp over the full stored range plus noise."""
    top = 2**bits - 1
    yy, xx = np.mgrid[0:rows, 0:cols]
    ramp = (yy / max(rows - 1, 1) + xx / max(cols - 1, 1)) / 2.0 * top
    noise = np.random.default_rng(seed).integers(-3, 4, size=(rows, cols))
    return np.clip(np.rint(ramp) + noise, 0, top).astype(np.int64)


class DicomFactory:
    """Writes small synthetic DICOM files (Explicit VR Little Endian by default) to a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def dataset(
        self,
        pixels: npt.NDArray[Any] | None = None,
        *,
        rows: int = 300,
        cols: int = 300,
        bits_allocated: int = 16,
        bits_stored: int = 12,
        signed: bool = False,
        photometric: str = "MONOCHROME2",
        samples: int = 1,
        frames: int = 1,
        transfer_syntax: UID = ExplicitVRLittleEndian,
        with_pixels: bool = True,
        **attrs: Any,
    ) -> Dataset:
        """A CR dataset; ``pixels`` (rows, cols[, samples]) defaults to :func:`stored_ramp`."""
        if pixels is None:
            pixels = stored_ramp(rows, cols, bits_stored)
            if samples == 3:
                pixels = np.stack([pixels, pixels[::-1], pixels[:, ::-1]], axis=-1)
        rows, cols = int(pixels.shape[0]), int(pixels.shape[1])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CR_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = transfer_syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "P-0001"
        ds.Modality = "CR"
        ds.ViewPosition = "LL"
        ds.BodyPartExamined = "LSPINE"
        ds.Manufacturer = "aacscore tests"
        ds.Rows = rows
        ds.Columns = cols
        ds.SamplesPerPixel = samples
        ds.PhotometricInterpretation = photometric
        if samples > 1:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.BitsAllocated = bits_allocated
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 1 if signed else 0
        for key, value in attrs.items():
            setattr(ds, key, value)
        if with_pixels:
            dtype = f"<{'i' if signed else 'u'}{bits_allocated // 8}"
            raw = np.asarray(pixels).astype(dtype).tobytes()
            ds.PixelData = raw * frames
        return ds

    def write(self, name: str, ds: Dataset | None = None, **kwargs: Any) -> Path:
        """Write ``ds`` (or ``self.dataset(**kwargs)``) as ``folder/name`` and return the path."""
        if ds is None:
            ds = self.dataset(**kwargs)
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path


@pytest.fixture
def dicom_factory(tmp_path: Path) -> DicomFactory:
    """Synthetic DICOM writer into this test's tmp_path."""
    return DicomFactory(tmp_path)


@pytest.fixture
def ramp() -> Callable[..., npt.NDArray[np.int64]]:
    """The :func:`stored_ramp` test-image generator."""
    return stored_ramp


def real_file(name: str) -> str:
    """Path of a pydicom / pydicom-data test file, found offline; skips when absent."""
    path = get_testdata_file(name, download=False)
    if not isinstance(path, str):
        pytest.skip(f"pydicom test file {name} is not installed")
    return path


class RealFiles:
    """Real pydicom test files, each read once per session."""

    def __init__(self) -> None:
        self._reads: dict[tuple[str, int], Radiograph] = {}
        self._stored: dict[str, npt.NDArray[Any]] = {}

    def path(self, name: str) -> str:
        return real_file(name)

    def read(self, name: str, min_size: int = 256) -> Radiograph:
        key = (name, min_size)
        if key not in self._reads:
            self._reads[key] = read_radiograph(real_file(name), min_size=min_size)
        return self._reads[key]

    def dataset(self, name: str) -> Dataset:
        return pydicom.dcmread(real_file(name))

    def stored(self, name: str) -> npt.NDArray[Any]:
        """Raw stored values as decoded by pydicom (no LUTs, no inversion)."""
        if name not in self._stored:
            self._stored[name] = self.dataset(name).pixel_array
        return self._stored[name]


@pytest.fixture(scope="session")
def real() -> RealFiles:
    """Session cache of real pydicom test files."""
    return RealFiles()
