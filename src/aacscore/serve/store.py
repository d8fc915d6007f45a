"""Reviews in SQLite (``OUT/reviews.sqlite``): every change a new row, never overwritten.

One row per saved change: the case id, the case's review version it creates (1, 2, ...), the
reviewer, the time (UTC, ISO 8601), the decision (``accept``, ``reject`` or ``pending``), a
comment, and as JSON the corrected grades (the eight integer grades), the corrected vertebra
corners (only when the reviewer moved them) and the reading re-scored from them. The latest
version of a case is its review; the older ones are the audit trail.

Concurrency: a change names the version it was made on (0 for a case never reviewed); when
another reviewer saved in between, :meth:`ReviewStore.save` raises :class:`VersionConflict`
instead of writing (optimistic versioning; ``UNIQUE(case_id, version)`` backs it up).

Schema: ``schema_version`` holds one row, the version of the tables; :func:`migrate` brings an
older file up to :data:`SCHEMA_VERSION` step by step (:data:`MIGRATIONS`) in one transaction.
A file written by a newer aacscore is refused.
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
from aacscore.vertebrae import LEVEL_ORDER

STORE_NAME = "reviews.sqlite"
SCHEMA_VERSION = 2
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


@dataclass(frozen=True)
class ReviewChange:
    """A change to save: ``grades`` the eight integer grades (None: not given), ``vertebrae``
    corrected corners (None: unchanged), ``rescored`` the reading re-scored from them."""

    decision: Decision = Decision.PENDING
    comment: str = ""
    grades: Mapping[str, int] | None = None
    vertebrae: Corners | None = None
    rescored: Mapping[str, Any] | None = None


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


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1, 2: _v2}
"""Schema version -> the step that makes it from the version before."""


def schema_version(con: sqlite3.Connection) -> int:
    """The schema version of an open reviews file (0: no tables yet)."""
    has = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has:
        return 0
    row = con.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(con: sqlite3.Connection, path: str | Path, target: int = SCHEMA_VERSION) -> int:
    """Bring the tables up to ``target`` (in one transaction); returns the version found.

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
            MIGRATIONS[v](con)
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


# --- the store --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


class ReviewStore:
    """The reviews of one results folder (``OUT/reviews.sqlite``, created on first use).

    Every call opens its own connection, so one store may serve several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with self._connect() as con:
                migrate(con, self.path)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable reviews database ({e})") from e

    @classmethod
    def for_folder(cls, out_dir: str | Path) -> ReviewStore:
        return cls(Path(out_dir) / STORE_NAME)

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
        )
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                current = self._version(con, case_id)
                if current != version:
                    raise VersionConflict(case_id, version, current)
                con.execute(
                    "INSERT INTO reviews (case_id, version, reviewer, created, decision, comment,"
                    " grades_json, vertebrae_json, rescored_json) VALUES (?,?,?,?,?,?,?,?,?)",
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
        " rescored_json"
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
