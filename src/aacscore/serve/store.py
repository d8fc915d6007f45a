"""Reviews in SQLite (``OUT/reviews.sqlite``): every change a new row, never overwritten.

One row per saved change: the case id, the case's review version it creates (1, 2, ...), the
reviewer, the time (UTC, ISO 8601), the decision (``accept``, ``reject`` or ``pending``), a
comment, and as JSON the corrected grades (the eight integer grades), the corrected vertebra
corners (keyed by the model's level names; only those the reviewer moved), the corrected
Kauppila bounds (keyed by disc name in the reviewed labelling; only those moved), the level
relabelling (the model's name -> the reviewed one, None for a body that is no level) and the
reading re-scored from them. The latest version of a case is its review; the older ones are
the audit trail.

Concurrency: a change names the version it was made on (0 for a case never reviewed); when
another reviewer saved in between, :meth:`ReviewStore.save` raises :class:`VersionConflict`
instead of writing (optimistic versioning; ``UNIQUE(case_id, version)`` backs it up).

Schema: ``schema_version`` holds one row, the version of the tables; :func:`migrate` brings an
older file up to :data:`SCHEMA_VERSION` step by step (:data:`MIGRATIONS`) in one transaction.
A file written by a newer aacscore is refused. Version 3 named cases by the batch's file stem;
migrating re-keys them to the opaque ids of :func:`aacscore.serve.cases.case_id` when the
results folder's ``results.csv`` is known.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from aacscore.kauppila import MAX_GRADE, SEGMENTS
from aacscore.vertebrae import DISC_NAMES, LEVEL_ORDER

STORE_NAME = "reviews.sqlite"
SCHEMA_VERSION = 3
MAX_COMMENT = 4000
MAX_REVIEWER = 100


class Decision(str, Enum):
    """What the reviewer says of a case."""

    ACCEPT = "accept"
    """The reading, as corrected, is right (exported for validation and training)."""
    REJECT = "reject"
    """The film cannot be read (wrong view, unusable image): left out of every export."""
    PENDING = "pending"
    """Saved, not decided yet."""

    def __str__(self) -> str:
        return self.value


class ReviewError(ValueError):
    """A review that cannot be stored; the message names the case and the problem."""


class StoreError(RuntimeError):
    """A reviews file that cannot be used; the message names the file and the problem."""


class VersionConflict(ReviewError):
    """The case was changed since the version the change was made on."""

    def __init__(self, case_id: str, given: int, current: int) -> None:
        self.case_id = case_id
        self.given = given
        self.current = current
        super().__init__(
            f"{case_id}: the review was changed by someone else (version {current}, this change "
            f"was made on version {given}); reload the case and apply the change again"
        )


Corners = dict[str, list[list[float]]]
"""Vertebra name -> its four ``[x, y]`` corners (in the order of
:data:`aacscore.vertebrae.CORNER_NAMES`)."""
Bounds = dict[str, dict[str, list[float]]]
"""Disc name (``"L1/L2"``) -> ``{"anterior": [x, y], "posterior": [x, y]}``."""
Labels = dict[str, str | None]
"""The model's level name -> the reviewed one (None: not a level of the film)."""


@dataclass(frozen=True)
class ReviewChange:
    """A change to save: ``grades`` the eight integer grades (None: not given), ``vertebrae``
    corrected corners, ``bounds`` corrected bounds, ``labels`` the relabelling (None:
    unchanged), ``rescored`` the reading re-scored from them."""

    decision: Decision = Decision.PENDING
    comment: str = ""
    grades: Mapping[str, int] | None = None
    vertebrae: Corners | None = None
    rescored: Mapping[str, Any] | None = None
    bounds: Bounds | None = None
    labels: Labels | None = None


@dataclass(frozen=True)
class Review:
    """One stored row."""

    case_id: str
    version: int
    reviewer: str
    created: str
    decision: Decision
    comment: str = ""
    grades: Mapping[str, int] | None = None
    vertebrae: Corners | None = None
    rescored: Mapping[str, Any] | None = field(default=None)
    bounds: Bounds | None = None
    labels: Labels | None = None

    @property
    def aac24(self) -> int | None:
        """The total of the reviewed grades."""
        return None if self.grades is None else sum(self.grades.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "version": self.version,
            "reviewer": self.reviewer,
            "created": self.created,
            "decision": self.decision.value,
            "comment": self.comment,
            "grades": None if self.grades is None else dict(self.grades),
            "aac24": self.aac24,
            "vertebrae": self.vertebrae,
            "rescored": None if self.rescored is None else dict(self.rescored),
            "bounds": self.bounds,
            "labels": self.labels,
        }


# --- schema -----------------------------------------------------------------------------------


def _v1(con: sqlite3.Connection) -> None:
    con.execute(
        """CREATE TABLE reviews (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            reviewer TEXT NOT NULL,
            created TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'pending')),
            comment TEXT NOT NULL DEFAULT '',
            grades_json TEXT,
            vertebrae_json TEXT,
            UNIQUE (case_id, version)
        )"""
    )


def _v2(con: sqlite3.Connection) -> None:
    con.execute("ALTER TABLE reviews ADD COLUMN rescored_json TEXT")
    con.execute("CREATE INDEX reviews_case ON reviews (case_id, version)")


def _v3(con: sqlite3.Connection, rekey: Mapping[str, str]) -> None:
    con.execute("ALTER TABLE reviews ADD COLUMN bounds_json TEXT")
    con.execute("ALTER TABLE reviews ADD COLUMN labels_json TEXT")
    for stem, new in rekey.items():
        con.execute("UPDATE reviews SET case_id = ? WHERE case_id = ?", (new, stem))


MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Mapping[str, str]], None]] = {
    1: lambda con, _: _v1(con),
    2: lambda con, _: _v2(con),
    3: _v3,
}
"""Schema version -> the step that makes it from the version before (given the case re-keying
of version 3: the batch's stem -> the case id)."""


def schema_version(con: sqlite3.Connection) -> int:
    """The schema version of an open reviews file (0: no tables yet)."""
    has = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has:
        return 0
    row = con.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(
    con: sqlite3.Connection,
    path: str | Path,
    target: int = SCHEMA_VERSION,
    rekey: Callable[[], Mapping[str, str]] | None = None,
) -> int:
    """Bring the tables up to ``target`` (in one transaction); returns the version found.
    ``rekey`` gives the stem -> case id map of the folder, asked only when version 3 is made.

    Raises:
        StoreError: the file was written by a newer aacscore (a version above ``target``)."""
    found = schema_version(con)
    if found > target:
        raise StoreError(
            f"{path}: reviews schema version {found} is newer than this aacscore knows "
            f"({target}); upgrade aacscore"
        )
    if found == target:
        return found
    with con:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for v in range(found + 1, target + 1):
            MIGRATIONS[v](con, rekey() if v == 3 and found > 0 and rekey else {})
        con.execute("DELETE FROM schema_version")
        con.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
    return found


# --- validation -------------------------------------------------------------------------------


def check_grades(case_id: str, grades: Mapping[str, Any]) -> dict[str, int]:
    """The eight grades as integers 0-3, in segment order.

    Raises:
        ReviewError: a segment missing or unknown, or a grade that is not an integer 0-3."""
    unknown = sorted(set(grades) - set(SEGMENTS))
    missing = [s for s in SEGMENTS if s not in grades]
    if unknown or missing:
        raise ReviewError(
            f"{case_id}: grades must give the 8 segments {', '.join(SEGMENTS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    out: dict[str, int] = {}
    for s in SEGMENTS:
        g = grades[s]
        if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g <= MAX_GRADE:
            raise ReviewError(f"{case_id}: grade {s} must be an integer 0-{MAX_GRADE}, got {g!r}")
        out[s] = g
    return out


def check_vertebrae(case_id: str, vertebrae: Mapping[str, Any]) -> Corners:
    """Corners as ``{level: [[x, y] x 4]}`` of finite numbers, for known levels.

    Raises:
        ReviewError: an unknown level, or corners that are not four finite [x, y] pairs."""
    out: Corners = {}
    for name, corners in vertebrae.items():
        if name not in LEVEL_ORDER:
            raise ReviewError(
                f"{case_id}: unknown vertebra {name!r} (levels are {', '.join(LEVEL_ORDER)})"
            )
        ok = isinstance(corners, Sequence) and len(corners) == 4
        pts: list[list[float]] = []
        if ok:
            for p in corners:
                if not (isinstance(p, Sequence) and len(p) == 2):
                    ok = False
                    break
                try:
                    x, y = float(p[0]), float(p[1])
                except (TypeError, ValueError):
                    ok = False
                    break
                if not (math.isfinite(x) and math.isfinite(y)):
                    ok = False
                    break
                pts.append([x, y])
        if not ok:
            raise ReviewError(f"{case_id}: corners of {name} must be four finite [x, y] pairs")
        out[name] = pts
    return out


def _point(value: Any) -> list[float] | None:
    """``[x, y]`` of two finite numbers, or None."""
    if not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2):
        return None
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    return [x, y] if math.isfinite(x) and math.isfinite(y) else None


def check_bounds(case_id: str, bounds: Mapping[str, Any]) -> Bounds:
    """Bounds as ``{disc: {"anterior": [x, y], "posterior": [x, y]}}`` for the five Kauppila
    discs, the two anchors finite and apart.

    Raises:
        ReviewError: an unknown disc, or anchors that are not two distinct finite points."""
    out: Bounds = {}
    for name, bound in bounds.items():
        if name not in DISC_NAMES:
            raise ReviewError(
                f"{case_id}: unknown bound {name!r} (bounds are {', '.join(DISC_NAMES)})"
            )
        ant = _point(bound.get("anterior")) if isinstance(bound, Mapping) else None
        post = _point(bound.get("posterior")) if isinstance(bound, Mapping) else None
        if ant is None or post is None or ant == post:
            raise ReviewError(
                f"{case_id}: bound {name} needs distinct finite anterior and posterior [x, y]"
            )
        out[name] = {"anterior": ant, "posterior": post}
    return out


def check_labels(case_id: str, labels: Mapping[str, Any]) -> Labels:
    """A relabelling ``{model level: reviewed level or None}`` of known levels, no two bodies
    given the same level.

    Raises:
        ReviewError: an unknown level, or one level given twice."""
    out: Labels = {}
    for old, new in labels.items():
        for name in (old, new):
            if name is not None and name not in LEVEL_ORDER:
                raise ReviewError(
                    f"{case_id}: unknown level {name!r} (levels are {', '.join(LEVEL_ORDER)})"
                )
        out[str(old)] = None if new is None else str(new)
    given = [n for n in out.values() if n is not None]
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise ReviewError(f"{case_id}: the relabelling gives {', '.join(twice)} to two bodies")
    return out


# --- the store --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


class ReviewStore:
    """The reviews of one results folder (``OUT/reviews.sqlite``, created on first use).

    Every call opens its own connection, so one store may serve several threads. ``rekey``:
    the folder's stem -> case id map, asked for when an older file is migrated."""

    def __init__(
        self, path: str | Path, rekey: Callable[[], Mapping[str, str]] | None = None
    ) -> None:
        self.path = Path(path)
        try:
            with self._connect() as con:
                migrate(con, self.path, rekey=rekey)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable reviews database ({e})") from e

    @classmethod
    def for_folder(cls, out_dir: str | Path) -> ReviewStore:
        """The store of a results folder (older files re-keyed from its ``results.csv``)."""
        folder = Path(out_dir)

        def rekey() -> dict[str, str]:
            from aacscore.serve.cases import CaseIndex

            return CaseIndex(folder).stems()

        return cls(folder / STORE_NAME, rekey)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout = 10000")
            yield con
        finally:
            con.close()

    def save(self, case_id: str, reviewer: str, change: ReviewChange, version: int) -> Review:
        """Store ``change`` as the case's next version; ``version`` is the one it was made on.

        Raises:
            VersionConflict: the case's current version is not ``version``.
            ReviewError: a reviewer name or comment that is empty / too long."""
        reviewer = reviewer.strip()
        if not reviewer or len(reviewer) > MAX_REVIEWER:
            raise ReviewError(f"{case_id}: give a reviewer name of 1-{MAX_REVIEWER} characters")
        if len(change.comment) > MAX_COMMENT:
            raise ReviewError(f"{case_id}: the comment is longer than {MAX_COMMENT} characters")
        grades = None if change.grades is None else check_grades(case_id, change.grades)
        verts = None if change.vertebrae is None else check_vertebrae(case_id, change.vertebrae)
        bounds = None if change.bounds is None else check_bounds(case_id, change.bounds)
        labels = None if change.labels is None else check_labels(case_id, change.labels)
        review = Review(
            case_id=case_id,
            version=version + 1,
            reviewer=reviewer,
            created=_now(),
            decision=Decision(change.decision),
            comment=change.comment,
            grades=grades,
            vertebrae=verts,
            rescored=None if change.rescored is None else dict(change.rescored),
            bounds=bounds,
            labels=labels,
        )
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                current = self._version(con, case_id)
                if current != version:
                    raise VersionConflict(case_id, version, current)
                con.execute(
                    "INSERT INTO reviews (case_id, version, reviewer, created, decision, comment,"
                    " grades_json, vertebrae_json, rescored_json, bounds_json, labels_json)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        case_id,
                        review.version,
                        review.reviewer,
                        review.created,
                        review.decision.value,
                        review.comment,
                        _json(grades),
                        _json(verts),
                        _json(review.rescored),
                        _json(bounds),
                        _json(labels),
                    ),
                )
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        return review

    @staticmethod
    def _version(con: sqlite3.Connection, case_id: str) -> int:
        row = con.execute(
            "SELECT MAX(version) FROM reviews WHERE case_id = ?", (case_id,)
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def version(self, case_id: str) -> int:
        """The case's current review version (0: never reviewed)."""
        with self._connect() as con:
            return self._version(con, case_id)

    _COLUMNS = (
        "case_id, version, reviewer, created, decision, comment, grades_json, vertebrae_json,"
        " rescored_json, bounds_json, labels_json"
    )

    @staticmethod
    def _review(row: Sequence[Any]) -> Review:
        def load(text: str | None) -> Any:
            return None if text is None else json.loads(text)

        return Review(
            case_id=str(row[0]),
            version=int(row[1]),
            reviewer=str(row[2]),
            created=str(row[3]),
            decision=Decision(row[4]),
            comment=str(row[5]),
            grades=load(row[6]),
            vertebrae=load(row[7]),
            rescored=load(row[8]),
            bounds=load(row[9]),
            labels=load(row[10]),
        )

    def history(self, case_id: str) -> list[Review]:
        """Every stored change of a case, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {self._COLUMNS} FROM reviews WHERE case_id = ? ORDER BY version",
                (case_id,),
            ).fetchall()
        return [self._review(r) for r in rows]

    def latest(self, case_id: str) -> Review | None:
        """The case's current review, or None."""
        history = self.history(case_id)
        return history[-1] if history else None

    def latest_all(self) -> dict[str, Review]:
        """The current review of every reviewed case."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {self._COLUMNS} FROM reviews r WHERE version = "
                "(SELECT MAX(version) FROM reviews WHERE case_id = r.case_id) ORDER BY case_id"
            ).fetchall()
        return {str(r[0]): self._review(r) for r in rows}
