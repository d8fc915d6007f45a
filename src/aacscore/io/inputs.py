"""Turning command-line inputs (files, folders, list files, zip archives) into readable items.

:func:`find_inputs` returns the items and what it skipped, each with the reason
(:class:`SkippedInput`): files that are not DICOM or images, the simulator's sidecars
(``*.json`` annotations, ``<case>_labels.png`` and ``<case>_calc.png`` next to ``<case>.*``),
aacscore's own outputs (overlay PNGs carrying the text chunk ``Software=aacscore <version>``,
thumbnail JPEGs whose comment starts with ``aacscore``, DICOM structured reports of any SR SOP
class, and Secondary Captures whose Manufacturer or model is ``aacscore`` and whose series
description starts with ``aacscore``), and anything under an ``exclude`` folder (the output
folder of a batch is never read as input, on a first run or a rerun). :func:`collect_inputs`
returns the items only.
"""

from __future__ import annotations

import glob
import logging
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from aacscore.io._common import MIN_SIZE, SpacingArg, library_messages
from aacscore.io.reader import (
    DICOM_SUFFIXES,
    HEAD_BYTES,
    IMAGE_SUFFIXES,
    read_radiograph,
    read_radiograph_bytes,
    sniff,
)
from aacscore.io.types import Radiograph, RadiographError

logger = logging.getLogger(__name__)

LIST_SUFFIXES: frozenset[str] = frozenset({".txt", ".lst", ".list"})
"""A file given directly with one of these suffixes lists inputs, one per line."""

MAX_MEMBER_BYTES = 2 << 30
"""Zip members larger than this (uncompressed) are refused without reading them."""

OUTPUT_MARK = "aacscore"
"""What aacscore stamps on the pictures and DICOM objects it writes (PNG text chunk
``Software=aacscore <version>``; DICOM Manufacturer, model and series description), so that a
later run does not take them for films."""
PNG_SOFTWARE_KEY = "Software"
"""The PNG text chunk that carries :data:`OUTPUT_MARK`."""
SIDECAR_SUFFIXES: dict[str, str] = {
    "_labels": "the simulator's vertebra label map",
    "_calc": "the simulator's calcification mask",
}
"""``<case><suffix>.png`` next to a ``<case>.*`` file is a sidecar of that case."""
SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
"""SOP Class UIDs of the DICOM structured reports (and key object selections)."""
SC_CLASSES: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)
"""SOP Class UIDs of the Secondary Capture images (single- and multi-frame)."""
OUTPUT_FOLDER_REASON = "an excluded folder (the output folder is never read as input)"


@dataclass(frozen=True)
class SkippedInput:
    """A file (or folder) left out of the inputs, and why."""

    file: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """``{"file": ..., "reason": ...}`` (the form of ``run.json``'s ``skipped_inputs``)."""
        return {"file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class CollectedInputs:
    """What :func:`find_inputs` found: the items to score, in order, and what it skipped."""

    items: tuple[InputItem, ...]
    skipped: tuple[SkippedInput, ...] = ()


@dataclass(frozen=True)
class InputItem:
    """One radiograph to read: a file on disk, or a member of a zip archive at ``path``."""

    path: Path
    member: str | None = None

    @property
    def name(self) -> str:
        """Display name: the path, or ``archive.zip:member.dcm`` for zip members."""
        return f"{self.path}:{self.member}" if self.member is not None else str(self.path)

    @property
    def stem(self) -> str:
        """File name without folders and extension (of the member for zip members)."""
        return PurePosixPath(self.member).stem if self.member is not None else self.path.stem

    def read_bytes(self) -> bytes:
        """The raw file content (zip members are read in memory, never extracted)."""
        if self.member is None:
            try:
                return self.path.read_bytes()
            except FileNotFoundError as exc:
                raise RadiographError(self.name, "file not found") from exc
            except OSError as exc:
                raise RadiographError(self.name, f"cannot be read ({exc})") from exc
        try:
            with zipfile.ZipFile(self.path) as zf:
                info = zf.getinfo(self.member)
                if info.file_size > MAX_MEMBER_BYTES:
                    raise RadiographError(
                        self.name, f"zip member too large ({info.file_size} bytes)"
                    )
                return zf.read(info)
        except FileNotFoundError as exc:
            raise RadiographError(self.path, "file not found") from exc
        except KeyError as exc:
            raise RadiographError(self.name, "member not found in the zip archive") from exc
        except RuntimeError as exc:  # encrypted member
            raise RadiographError(self.name, f"cannot read zip member ({exc})") from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise RadiographError(self.name, f"corrupt zip archive or member ({exc})") from exc

    def read(
        self,
        spacing_mm: SpacingArg = None,
        include_patient: bool = False,
        *,
        min_size: int = MIN_SIZE,
        decode_spacing_mm: float | None = None,
    ) -> Radiograph:
        """Decode this item with :func:`aacscore.io.read_radiograph`."""
        if self.member is None:
            return read_radiograph(
                self.path,
                spacing_mm,
                include_patient,
                min_size=min_size,
                decode_spacing_mm=decode_spacing_mm,
            )
        return read_radiograph_bytes(
            self.read_bytes(),
            self.name,
            spacing_mm,
            include_patient,
            min_size=min_size,
            decode_spacing_mm=decode_spacing_mm,
        )


def collect_inputs(
    inputs: Sequence[str | Path], *, exclude: Sequence[str | Path] = ()
) -> list[InputItem]:
    """The items of :func:`find_inputs` (what it skipped is logged only)."""
    return list(find_inputs(inputs, exclude=exclude).items)


def find_inputs(
    inputs: Sequence[str | Path], *, exclude: Sequence[str | Path] = (), missing_ok: bool = False
) -> CollectedInputs:
    """Expand inputs into items, in order, without duplicates, and say what was skipped.

    - a file is taken as given (a .zip is expanded, a .txt/.lst/.list file lists inputs one
      per line, relative to the list file; blank lines and ``#`` comments are skipped), unless
      it is a sidecar or an aacscore output (see the module docstring) or lies under ``exclude``;
    - a folder is searched recursively in sorted order for DICOM files (.dcm/.dicom/.dic or a
      "DICM" preamble), PNG/JPEG/TIFF images and zip archives; other files are skipped, and so
      are the sidecars, aacscore's outputs and the ``exclude`` folders (not entered);
    - a zip archive yields its DICOM/image members (sorted), read in memory, with the same
      skips.

    Hidden files and folders and DICOMDIR files are skipped without a note (logged only).
    With ``missing_ok`` a path that does not exist (given or listed) is kept as an item, whose
    reading fails ("file not found"), instead of raising.

    Raises:
        RadiographError: an input does not exist (unless ``missing_ok``) or a zip archive is
            unreadable.
    """
    items: list[InputItem] = []
    skipped: list[SkippedInput] = []
    seen: set[tuple[Path, str | None]] = set()
    excluded = frozenset(Path(p).resolve() for p in exclude)

    def skip(name: str | Path, reason: str) -> None:
        logger.info("%s: skipped (%s)", name, reason)
        skipped.append(SkippedInput(str(name), reason))

    walker = _Walker(excluded, skip, missing_ok)
    for item in walker.expand(inputs, lists_open=()):
        key = (item.path.resolve(), item.member)
        if key not in seen:
            seen.add(key)
            items.append(item)
    unique = tuple({(s.file, s.reason): s for s in skipped}.values())
    logger.info("%d input(s) collected, %d skipped", len(items), len(unique))
    return CollectedInputs(tuple(items), unique)


class _Walker:
    """Expands inputs, reporting every skipped file through ``skip``."""

    def __init__(
        self,
        excluded: frozenset[Path],
        skip: Callable[[str | Path, str], None],
        missing_ok: bool = False,
    ) -> None:
        self.excluded = excluded
        self.skip = skip
        self.missing_ok = missing_ok

    def is_excluded(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved == e or e in resolved.parents for e in self.excluded)

    def expand(
        self, inputs: Sequence[str | Path], lists_open: tuple[Path, ...]
    ) -> Iterator[InputItem]:
        for raw in inputs:
            path = Path(raw)
            if not path.exists():
                if not self.missing_ok:
                    raise RadiographError(path, "file not found")
                yield InputItem(path)
            elif self.is_excluded(path):
                self.skip(path, OUTPUT_FOLDER_REASON)
            elif path.is_dir():
                yield from self.folder(path)
            elif path.suffix.lower() == ".zip":
                yield from self.zip(path)
            elif path.suffix.lower() in LIST_SUFFIXES:
                yield from self.list_file(path, lists_open)
            else:
                reason = _sidecar_reason(path.name, _file_has_sibling(path))
                reason = reason or _file_output_reason(path)
                if reason:
                    self.skip(path, reason)
                else:
                    yield InputItem(path)

    def list_file(self, path: Path, lists_open: tuple[Path, ...]) -> Iterator[InputItem]:
        entries = _list_entries(path, lists_open, self.missing_ok)
        yield from self.expand(entries, (*lists_open, path.resolve()))

    def folder(self, root: Path) -> Iterator[InputItem]:
        files: list[Path] = []
        for here, dirs, names in os.walk(root):
            folder = Path(here)
            for d in list(dirs):
                if self.excluded and self.is_excluded(folder / d):
                    dirs.remove(d)
                    self.skip(folder / d, OUTPUT_FOLDER_REASON)
            files += [folder / n for n in names if (folder / n).is_file()]
        files.sort(key=lambda p: p.relative_to(root).as_posix())
        names_in: dict[Path, list[str]] = {}
        for p in files:
            names_in.setdefault(p.parent, []).append(p.name)
        stems_in = {folder: _stems(names) for folder, names in names_in.items()}
        for path in files:
            rel = path.relative_to(root)
            suffix = path.suffix.lower()
            if _hidden(rel.parts) or path.name.upper() == "DICOMDIR":
                logger.debug("%s: skipped (hidden or DICOMDIR)", path)
            elif reason := _sidecar_reason(path.name, stems_in[path.parent]):
                self.skip(path, reason)
            elif suffix == ".zip":
                yield from self.zip(path)
            elif suffix in DICOM_SUFFIXES or suffix in IMAGE_SUFFIXES or _is_dicom_file(path):
                if reason := _file_output_reason(path):
                    self.skip(path, reason)
                else:
                    yield InputItem(path)
            else:
                logger.debug("%s: skipped (not a DICOM or image file)", path)
                self.skip(path, "not a DICOM or image file")

    def zip(self, path: Path) -> Iterator[InputItem]:
        members: list[str] = []
        try:
            with zipfile.ZipFile(path) as zf:
                infos = sorted(zf.infolist(), key=lambda i: i.filename)
                names_in: dict[PurePosixPath, list[str]] = {}
                for info in infos:
                    m = PurePosixPath(info.filename)
                    names_in.setdefault(m.parent, []).append(m.name)
                stems_in = {folder: _stems(names) for folder, names in names_in.items()}
                for info in infos:
                    member = PurePosixPath(info.filename)
                    suffix = member.suffix.lower()
                    name = f"{path}:{info.filename}"
                    if info.is_dir():
                        continue
                    if _hidden(member.parts) or member.name.upper() == "DICOMDIR":
                        logger.debug("%s: skipped (hidden or DICOMDIR)", name)
                    elif reason := _sidecar_reason(member.name, stems_in[member.parent]):
                        self.skip(name, reason)
                    elif (
                        suffix in DICOM_SUFFIXES
                        or suffix in IMAGE_SUFFIXES
                        or (not info.flag_bits & 0x1 and _member_is_dicom(zf, info))
                    ):
                        if reason := _member_output_reason(zf, info):
                            self.skip(name, reason)
                        else:
                            members.append(info.filename)
                    else:
                        logger.debug("%s: skipped (not a DICOM or image file)", name)
                        self.skip(name, "not a DICOM or image file")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise RadiographError(path, f"not a readable zip archive ({exc})") from exc
        for member_name in members:
            yield InputItem(path, member_name)


def _list_entries(
    path: Path, lists_open: tuple[Path, ...], missing_ok: bool = False
) -> list[str | Path]:
    resolved = path.resolve()
    if resolved in lists_open:
        raise RadiographError(path, "list file includes itself")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RadiographError(path, f"cannot read list file ({exc})") from exc
    entries: list[str | Path] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        entry = Path(text)
        entry = entry if entry.is_absolute() else path.parent / entry
        if not entry.exists() and not missing_ok:
            raise RadiographError(entry, f"file not found (listed in {path} line {number})")
        entries.append(entry)
    return entries


def _sidecar_reason(name: str, has_sibling: Callable[[str], bool]) -> str | None:
    """Why the file ``name`` is a sidecar, or None; ``has_sibling(stem)`` says whether another
    file of that stem lies beside it."""
    p = PurePosixPath(name)
    if p.suffix.lower() == ".json":
        return "a JSON sidecar (annotations or results), not a radiograph"
    if p.suffix.lower() != ".png":
        return None
    for suffix, what in SIDECAR_SUFFIXES.items():
        case = p.stem[: -len(suffix)]
        if case and p.stem.endswith(suffix) and has_sibling(case):
            return f"{what} of {case}"
    return None


def _stems(names: Iterable[str]) -> Callable[[str], bool]:
    stems = {PurePosixPath(n).stem for n in names}
    return stems.__contains__


def _file_has_sibling(path: Path) -> Callable[[str], bool]:
    def has(stem: str) -> bool:
        return any(p.stem == stem and p != path for p in path.parent.glob(glob.escape(stem) + ".*"))

    return has


def _file_output_reason(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return _output_reason(fh, path.suffix.lower())
    except OSError:
        return None


def _member_output_reason(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1 or info.file_size > MAX_MEMBER_BYTES:
        return None
    try:
        with zf.open(info) as fh:
            return _output_reason(fh, PurePosixPath(info.filename).suffix.lower())
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError):
        return None


def _output_reason(fh: IO[bytes], suffix: str) -> str | None:
    """Why the file open in ``fh`` is an aacscore output or a DICOM SR, or None."""
    head = fh.read(HEAD_BYTES)
    fh.seek(0)
    kind = sniff(head)
    if kind == "png":
        return _png_reason(fh)
    if kind == "jpeg":
        return _jpeg_reason(fh)
    if kind == "dicom" or (kind is None and suffix in DICOM_SUFFIXES):
        return _dicom_reason(fh)
    return None


def _png_reason(fh: IO[bytes]) -> str | None:
    from PIL import Image

    try:
        with Image.open(fh) as im:
            software = str(im.info.get(PNG_SOFTWARE_KEY, ""))
    except Exception:  # unreadable: the reader says why later
        return None
    if software.split(" ", 1)[0] == OUTPUT_MARK:
        return f"an aacscore overlay picture (PNG {PNG_SOFTWARE_KEY}={software})"
    return None


def _jpeg_reason(fh: IO[bytes]) -> str | None:
    from PIL import Image

    try:
        with Image.open(fh) as im:
            comment = im.info.get("comment", b"")
    except Exception:  # unreadable: the reader says why later
        return None
    text = comment.decode("latin-1") if isinstance(comment, bytes) else str(comment)
    if text.split(" ", 1)[0] == OUTPUT_MARK:
        return f"an aacscore thumbnail (JPEG comment {text!r})"
    return None


def _dicom_reason(fh: IO[bytes]) -> str | None:
    import pydicom

    tags = ["SOPClassUID", "Modality", "Manufacturer", "ManufacturerModelName", "SeriesDescription"]
    try:
        # what pydicom says of the file here is said again, with the file name, when it is read
        with library_messages(""):
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True, specific_tags=tags)
        meta = getattr(ds, "file_meta", None)
        sop = str(
            ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else "") or ""
        )
        modality = str(ds.get("Modality") or "").upper()
        makers = {str(ds.get("Manufacturer") or ""), str(ds.get("ManufacturerModelName") or "")}
        series = str(ds.get("SeriesDescription") or "")
    except Exception:  # unreadable: the reader says why later
        return None
    if sop.startswith(SR_CLASS_PREFIX) or modality == "SR":
        return f"a DICOM structured report (SOP Class {sop or 'unknown'}), not an image"
    if sop in SC_CLASSES and OUTPUT_MARK in makers and series.split(" ", 1)[0] == OUTPUT_MARK:
        return f"an aacscore secondary capture (series {series!r}), not a film"
    return None


def _hidden(parts: Sequence[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return sniff(fh.read(HEAD_BYTES)) == "dicom"
    except OSError:
        return False


def _member_is_dicom(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    try:
        with zf.open(info) as fh:
            return sniff(fh.read(HEAD_BYTES)) == "dicom"
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError):
        return False
