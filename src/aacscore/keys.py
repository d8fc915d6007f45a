"""The case keys that join aacscore's results with reference readings and cohort tables.

``case_key("/data/p1/P001.dcm") == "P001"``: the file name without its folder and without a
known image or archive suffix (case-insensitive, a compression suffix first: ``P001.DCM.gz``
-> ``P001``). Anything else after a dot is kept, so DICOM UIDs used as file names
(``1.2.840.113619.2.55``) stay whole. Zip members (``batch.zip:IM0001.dcm`` or
``batch.zip!IM0001.dcm``) and Windows paths give the member's / file's own name.

:class:`JoinKey` chooses what ``validate`` and ``cohort`` join on (:class:`KeyFrom`):

* ``name``: :func:`case_key` of the file name (the default).
* ``relpath``: the path relative to a root folder (:func:`relative_key`): forward slashes, no
  ``.``/``..`` parts, case kept, and the last part's suffix removed as :func:`case_key` does
  (``/data/p1/IM0001.DCM`` with root ``/data`` -> ``p1/IM0001``). Zip members keep their archive:
  ``/data/batch.zip:sub/IM0001.dcm`` -> ``batch.zip:sub/IM0001`` (the member path alone when the
  root is the archive itself). Paths are compared as text, nothing is read from disk; relative
  paths are read from the current directory. In a reference or cohort table a relative path
  that does not lie inside the root that way is taken as already relative to the root
  (``p1/IM0001.dcm``).
* ``sop_uid``, ``study_uid``, ``accession``: that column of ``results.csv``, as written (spaces
  around it removed). In the reference / cohort table, SOP and Study Instance UIDs also go
  through :func:`case_key`, so UID file names (``/pacs/1.2.840.1.dcm``) match; accession numbers
  are taken as written (leading zeros kept). ``study_uid`` and ``accession`` allow one usable
  film per study (other films of the study may have failed).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".nii",
    ".dcm",
    ".dicom",
    ".dic",
    ".ima",
    ".png",
    ".jpg",
    ".jpeg",
    ".jp2",
    ".j2k",
    ".tif",
    ".tiff",
    ".bmp",
)
"""Suffixes removed from a file name to give its key."""
COMPRESSION_SUFFIXES: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip")
"""Removed first, then one image suffix."""

_MAX_LISTED = 5
_ZIP_MEMBER = re.compile(r"^(?P<archive>.*?\.zip)[:!](?P<member>.+)$", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def _strip_suffixes(name: str) -> str:
    low = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            name, low = name[: -len(suffix)], low[: -len(suffix)]
            break
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def case_key(value: object) -> str:
    """Join key of a file name or path (see the module docstring)."""
    text = str(value).strip()
    name = re.split(r"[\\/:!]", text)[-1] if text else text
    name = name.strip() or text
    return _strip_suffixes(name)


class KeyFrom(str, Enum):
    """What ``validate`` and ``cohort`` join on (``--key-from``)."""

    NAME = "name"
    RELPATH = "relpath"
    SOP_UID = "sop_uid"
    STUDY_UID = "study_uid"
    ACCESSION = "accession"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def results_column(self) -> str:
        """The ``results.csv`` column the key is taken from."""
        return "file" if self in (KeyFrom.NAME, KeyFrom.RELPATH) else self.value

    @property
    def per_film(self) -> bool:
        """True when every film has its own key; False for study-level keys."""
        return self not in (KeyFrom.STUDY_UID, KeyFrom.ACCESSION)


KEY_SOURCES: tuple[str, ...] = tuple(k.value for k in KeyFrom)

_DESCRIPTION = {
    KeyFrom.NAME: "file names without folder and extension",
    KeyFrom.SOP_UID: "SOP Instance UIDs",
    KeyFrom.STUDY_UID: "Study Instance UIDs (one usable film per study)",
    KeyFrom.ACCESSION: "accession numbers (one usable film per accession number)",
}
_ALTERNATIVES = "--key-from sop_uid or --key-from relpath --root DIR"
_DUPLICATE_HINT = {
    KeyFrom.NAME: f"join on {_ALTERNATIVES}",
    KeyFrom.RELPATH: "the same file is listed twice, or two names differ only in their "
    "extension (which the key drops); remove the duplicate rows or join on --key-from sop_uid",
    KeyFrom.SOP_UID: "the same DICOM instance is listed twice; remove the duplicate rows or "
    "join on --key-from relpath --root DIR",
    KeyFrom.STUDY_UID: "--key-from study_uid needs one usable film and one reference row per "
    f"study; join on {_ALTERNATIVES} (one row per film)",
    KeyFrom.ACCESSION: "--key-from accession needs one usable film and one reference row per "
    f"accession number; join on {_ALTERNATIVES} (one row per film)",
}


class CaseKeyError(ValueError):
    """A value or choice that gives no case key; callers add the file, row and column."""


def _posix(text: str) -> str:
    text = text.strip().replace("\\", "/")
    return text[0].upper() + text[1:] if _DRIVE.match(text) else text


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or _DRIVE.match(path) is not None


def _normpath(path: str) -> str:
    return posixpath.normpath(path)


def _absolute(path: str, cwd: str) -> str:
    return _normpath(path if _is_absolute(path) else posixpath.join(cwd, path))


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (both absolute and normalised); None when outside."""
    if path == root:
        return ""
    prefix = root if root.endswith("/") else f"{root}/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def relative_key(value: str, root: str, cwd: str | None = None, *, table: bool = False) -> str:
    """Key of a path (or ``archive.zip:member``) relative to ``root`` (module docstring).

    ``root`` and ``cwd`` are absolute (``cwd`` defaults to the current directory). With
    ``table=True`` a relative path outside ``root`` is taken as already relative to it.
    Raises :class:`CaseKeyError` for a path outside the root or the root itself.
    """
    text = _posix(str(value))
    if not text:
        return ""
    here = _posix(cwd if cwd is not None else os.getcwd())
    base = _absolute(_posix(root), here)
    m = _ZIP_MEMBER.match(text)
    path, member = (m["archive"], m["member"]) if m else (text, None)
    rel = _inside(_absolute(path, here), base)
    if rel is None and table and not _is_absolute(path):
        p = _normpath(path)
        rel = None if p == ".." or p.startswith("../") else ("" if p == "." else p)
    if rel is None:
        raise CaseKeyError(
            f"{str(value).strip()!r} is outside --root {base}: give the folder that holds "
            "every input (as given to aacscore score, or its absolute path)"
        )
    if member is not None:
        mem = _normpath(member.lstrip("/"))
        key = mem if rel == "" else f"{rel}:{mem}"
    elif rel == "":
        raise CaseKeyError(f"{str(value).strip()!r} is the --root folder itself, not a file in it")
    else:
        key = rel
    cut = max(key.rfind("/"), key.rfind(":")) + 1
    return key[:cut] + _strip_suffixes(key[cut:])


@dataclass(frozen=True)
class Duplicate:
    """Rows (1-based) sharing one key, with a label (file name) per row."""

    key: str
    rows: tuple[int, ...]
    labels: tuple[str, ...]
    others: int
    """Further keys that are duplicated too."""


def find_duplicate(
    keys: Sequence[str], labels: Sequence[str], counted: Sequence[bool] | None = None
) -> Duplicate | None:
    """The duplicated key whose second row comes first (empty keys and rows not ``counted``
    are ignored); None when every key is unique."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k and (counted is None or counted[i]):
            groups.setdefault(k, []).append(i)
    dups = sorted((g[1], k) for k, g in groups.items() if len(g) > 1)
    if not dups:
        return None
    key = dups[0][1]
    rows = groups[key]
    return Duplicate(key, tuple(i + 1 for i in rows), tuple(labels[i] for i in rows), len(dups) - 1)


def _listing(rows: Sequence[int], labels: Sequence[str]) -> str:
    shown = "; ".join(f"row {r}: {lab}" for r, lab in zip(rows[:_MAX_LISTED], labels, strict=False))
    return shown + (f"; and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else "")


@dataclass(frozen=True)
class JoinKey:
    """How case keys are made (``--key-from`` and ``--root``).

    ``source`` accepts a :class:`KeyFrom` or its value and is stored as the member; ``root``
    (required with ``relpath``, refused otherwise) is stored absolute and normalised (as text:
    it need not exist here).
    """

    source: KeyFrom | str = KeyFrom.NAME
    root: str | Path | None = None
    _cwd: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "source", KeyFrom(self.source))
        except ValueError:
            raise CaseKeyError(
                f"unknown key source {self.source!r}; use one of {', '.join(KEY_SOURCES)}"
            ) from None
        cwd = _posix(os.getcwd())
        object.__setattr__(self, "_cwd", cwd)
        if self.source is KeyFrom.RELPATH:
            if self.root is None or not str(self.root).strip():
                raise CaseKeyError(
                    "--key-from relpath needs --root DIR: the folder the input paths are "
                    "relative to (the folder given to aacscore score)"
                )
            object.__setattr__(self, "root", _absolute(_posix(str(self.root)), cwd))
        elif self.root is not None:
            raise CaseKeyError(
                f"--root is used with --key-from relpath only (key source: {self.source})"
            )

    @property
    def kind(self) -> KeyFrom:
        """``source`` as the enum member."""
        return KeyFrom(self.source)

    def of_result(self, value: str) -> str:
        """Key of a ``results.csv`` value (its ``file`` or UID column)."""
        if self.kind is KeyFrom.NAME:
            return case_key(value)
        if self.kind is KeyFrom.RELPATH:
            return relative_key(value, str(self.root), self._cwd)
        return str(value).strip()

    def of_table(self, value: str) -> str:
        """Key of a reference or cohort table value."""
        if self.kind is KeyFrom.RELPATH:
            return relative_key(value, str(self.root), self._cwd, table=True)
        if self.kind is KeyFrom.ACCESSION:
            return str(value).strip()
        return case_key(value)

    def describe(self) -> str:
        """What the keys are, for messages and reports."""
        if self.kind is KeyFrom.RELPATH:
            return f"paths relative to {self.root} without extension"
        return _DESCRIPTION[self.kind]

    def settings(self) -> dict[str, str | None]:
        """``{"key_from", "root"}`` as recorded in the outputs."""
        return {"key_from": str(self.kind), "root": None if self.root is None else str(self.root)}

    def duplicate_problem(self, dup: Duplicate) -> str:
        """Message for a duplicated key, naming its rows and suggesting the key options."""
        more = f"; {dup.others} more key(s) are duplicated" if dup.others else ""
        src = "" if self.kind is KeyFrom.NAME else f" ({self.kind})"
        return (
            f"duplicated case key {dup.key!r}{src} ({_listing(dup.rows, dup.labels)}{more}): "
            f"{_DUPLICATE_HINT[self.kind]}"
        )

    def missing_column_problem(self, column: str) -> str:
        """Message for a ``results.csv`` without the key's column."""
        return (
            f"no {column!r} column for --key-from {self.kind} (a results.csv written before "
            "aacscore recorded DICOM identifiers, or not a results.csv): score the films again, "
            "or join on --key-from relpath --root DIR"
        )

    def missing_values_problem(self, rows: Sequence[int], labels: Sequence[str]) -> str:
        """Message for scored ``results.csv`` rows without a value in the key's column."""
        return (
            f"{len(rows)} scored row(s) have no {self.kind.results_column} "
            f"({_listing(rows, labels)}): they are not DICOM files, or lack this attribute; "
            "join on --key-from relpath --root DIR (or --key-from name), or remove those rows"
        )
