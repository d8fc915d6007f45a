"""Turning command-line inputs (files, folders, list files, zip archives) into readable items."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aacscore.io._common import MIN_SIZE, SpacingArg
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
    ) -> Radiograph:
        """Decode this item with :func:`aacscore.io.read_radiograph`."""
        if self.member is None:
            return read_radiograph(self.path, spacing_mm, include_patient, min_size=min_size)
        return read_radiograph_bytes(
            self.read_bytes(), self.name, spacing_mm, include_patient, min_size=min_size
        )


def collect_inputs(inputs: Sequence[str | Path]) -> list[InputItem]:
    """Expand inputs into items, in order, without duplicates.

    - a file is taken as given (a .zip is expanded, a .txt/.lst/.list file lists inputs one
      per line, relative to the list file; blank lines and ``#`` comments are skipped);
    - a folder is searched recursively in sorted order for DICOM files (.dcm/.dicom/.dic or a
      "DICM" preamble), PNG/JPEG/TIFF images and zip archives; other files are skipped;
    - a zip archive yields its DICOM/image members (sorted), read in memory.

    Raises:
        RadiographError: an input does not exist or a zip archive is unreadable.
    """
    items: list[InputItem] = []
    seen: set[tuple[Path, str | None]] = set()
    for item in _expand(inputs, lists_open=()):
        key = (item.path.resolve(), item.member)
        if key not in seen:
            seen.add(key)
            items.append(item)
    logger.info("%d input(s) collected", len(items))
    return items


def _expand(inputs: Sequence[str | Path], lists_open: tuple[Path, ...]) -> Iterator[InputItem]:
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise RadiographError(path, "file not found")
        if path.is_dir():
            yield from _folder(path)
        elif path.suffix.lower() == ".zip":
            yield from _zip(path)
        elif path.suffix.lower() in LIST_SUFFIXES:
            yield from _list_file(path, lists_open)
        else:
            yield InputItem(path)


def _list_file(path: Path, lists_open: tuple[Path, ...]) -> Iterator[InputItem]:
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
        if not entry.exists():
            raise RadiographError(entry, f"file not found (listed in {path} line {number})")
        entries.append(entry)
    yield from _expand(entries, (*lists_open, resolved))


def _hidden(parts: Sequence[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _folder(root: Path) -> Iterator[InputItem]:
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for path in files:
        rel = path.relative_to(root)
        suffix = path.suffix.lower()
        if _hidden(rel.parts) or path.name.upper() == "DICOMDIR":
            logger.debug("%s: skipped (hidden or DICOMDIR)", path)
        elif suffix == ".zip":
            yield from _zip(path)
        elif suffix in DICOM_SUFFIXES or suffix in IMAGE_SUFFIXES or _is_dicom_file(path):
            yield InputItem(path)
        else:
            logger.debug("%s: skipped (not a DICOM or image file)", path)


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return sniff(fh.read(HEAD_BYTES)) == "dicom"
    except OSError:
        return False


def _zip(path: Path) -> Iterator[InputItem]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
            members: list[str] = []
            for info in infos:
                member = PurePosixPath(info.filename)
                suffix = member.suffix.lower()
                if info.is_dir():
                    continue
                if _hidden(member.parts) or member.name.upper() == "DICOMDIR":
                    logger.debug("%s:%s: skipped (hidden or DICOMDIR)", path, info.filename)
                elif suffix in DICOM_SUFFIXES or suffix in IMAGE_SUFFIXES:
                    members.append(info.filename)
                elif not info.flag_bits & 0x1 and _member_is_dicom(zf, info):
                    members.append(info.filename)
                else:
                    logger.debug("%s:%s: skipped (not a DICOM or image file)", path, info.filename)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise RadiographError(path, f"not a readable zip archive ({exc})") from exc
    for member_name in members:
        yield InputItem(path, member_name)


def _member_is_dicom(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    try:
        with zf.open(info) as fh:
            return sniff(fh.read(HEAD_BYTES)) == "dicom"
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError):
        return False
