"""The SQLite review store: versions, conflicts, validation, the schema and its migration."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from aacscore.kauppila import SEGMENTS
from aacscore.serve.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    STORE_NAME,
    Decision,
    ReviewChange,
    ReviewError,
    ReviewStore,
    StoreError,
    VersionConflict,
    migrate,
    schema_version,
)
from tests.serve.conftest import Folder

GRADES = {s: i % 4 for i, s in enumerate(SEGMENTS)}
_BOUND = {"anterior": [10.0, 5.0], "posterior": [0.0, 6.0]}


def test_every_change_is_a_new_version_and_the_latest_wins(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "r.sqlite")
    assert store.version("c_0000abcd") == 0 and store.latest("c_0000abcd") is None
    first = store.save("c_0000abcd", "ann", ReviewChange(Decision.PENDING, "hm"), 0)
    second = store.save(
        "c_0000abcd",
        "bob",
        ReviewChange(Decision.ACCEPT, "", GRADES, {"L1": [[0, 0], [5, 0], [5, 5], [0, 5]]}),
        1,
    )
    assert (first.version, second.version) == (1, 2)
    history = store.history("c_0000abcd")
    assert [(r.reviewer, r.decision) for r in history] == [
        ("ann", Decision.PENDING),
        ("bob", Decision.ACCEPT),
    ]
    latest = store.latest("c_0000abcd")
    assert latest is not None and latest.grades == GRADES and latest.aac24 == sum(GRADES.values())
    assert latest.vertebrae == {"L1": [[0.0, 0.0], [5.0, 0.0], [5.0, 5.0], [0.0, 5.0]]}
    assert history[0].comment == "hm" and history[0].created.endswith("+00:00")
    assert set(store.latest_all()) == {"c_0000abcd"}


def test_a_change_made_on_an_old_version_is_refused(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "r.sqlite")
    store.save("c_0000abcd", "ann", ReviewChange(grades=GRADES), 0)
    with pytest.raises(VersionConflict) as err:
        store.save("c_0000abcd", "bob", ReviewChange(Decision.REJECT), 0)
    assert err.value.current == 1 and "changed by someone else" in str(err.value)
    assert [r.reviewer for r in store.history("c_0000abcd")] == ["ann"]


def test_concurrent_savers_on_one_version_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ReviewStore(path)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def save(i: int) -> None:
        store = ReviewStore(path)
        barrier.wait()
        try:
            store.save("c_0000abcd", f"r{i}", ReviewChange(), 0)
            outcomes.append("saved")
        except VersionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]
    assert len(ReviewStore(path).history("c_0000abcd")) == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (ReviewChange(grades={**GRADES, "L1_anterior": 4}), "integer 0-3"),
        (ReviewChange(grades={**GRADES, "L1_anterior": 1.5}), "integer 0-3"),  # type: ignore[dict-item]
        (ReviewChange(grades={"L1_anterior": 1}), "missing: L1_posterior"),
        (ReviewChange(grades={**GRADES, "L5_anterior": 1}), "unknown: L5_anterior"),
        (ReviewChange(vertebrae={"L9": [[0, 0]] * 4}), "unknown vertebra 'L9'"),
        (ReviewChange(vertebrae={"L1": [[0, 0]] * 3}), "four finite"),
        (ReviewChange(vertebrae={"L1": [[0, float("nan")]] * 4}), "four finite"),
        (ReviewChange(comment="x" * 5000), "longer than"),
        (ReviewChange(bounds={"L5/S1": _BOUND}), "unknown bound 'L5/S1'"),
        (ReviewChange(bounds={"L1/L2": {"anterior": [1, 2]}}), "distinct finite"),
        (ReviewChange(bounds={"L1/L2": {"anterior": [1, 2], "posterior": [1, 2]}}), "distinct"),
        (ReviewChange(labels={"L1": "L7"}), "unknown level 'L7'"),
        (ReviewChange(labels={"L1": "L2", "L3": "L2"}), "gives L2 to two bodies"),
    ],
)
def test_bad_changes_are_refused_with_the_case_named(
    tmp_path: Path, change: ReviewChange, problem: str
) -> None:
    store = ReviewStore(tmp_path / "r.sqlite")
    with pytest.raises(ReviewError, match=problem) as err:
        store.save("c_0000abcd", "ann", change, 0)
    assert str(err.value).startswith("c_0000abcd") or "reviewer" in str(err.value)
    assert store.version("c_0000abcd") == 0


def test_an_empty_reviewer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="reviewer name"):
        ReviewStore(tmp_path / "r.sqlite").save("c_0000abcd", "  ", ReviewChange(), 0)


def test_schema_version_1_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    migrate(con, path, target=1)
    assert schema_version(con) == 1
    con.execute(
        "INSERT INTO reviews (case_id, version, reviewer, created, decision, comment,"
        " grades_json) VALUES ('c_0000abcd', 1, 'ann', '2026-01-01T00:00:00+00:00', 'accept',"
        " 'old', '{\"L1_anterior\": 2}')"
    )
    con.commit()
    columns = {r[1] for r in con.execute("PRAGMA table_info(reviews)")}
    assert "rescored_json" not in columns
    con.close()
    store = ReviewStore(path)  # migrates to the current version
    con = sqlite3.connect(path)
    assert schema_version(con) == SCHEMA_VERSION == max(MIGRATIONS)
    assert "rescored_json" in {r[1] for r in con.execute("PRAGMA table_info(reviews)")}
    con.close()
    old = store.latest("c_0000abcd")
    assert old is not None and old.comment == "old" and old.rescored is None
    assert store.save("c_0000abcd", "bob", ReviewChange(rescored={"aac24": 3.0}), 1).version == 2


def test_a_newer_schema_or_a_non_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    ReviewStore(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this aacscore knows"):
        ReviewStore(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite: not a usable reviews database"):
        ReviewStore(junk)


def test_moved_bounds_and_relabelled_levels_are_stored(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "r.sqlite")
    labels: dict[str, str | None] = {"L1": "L2", "L2": "L3", "S1": None}
    store.save("c_0000abcd", "ann", ReviewChange(bounds={"L1/L2": _BOUND}, labels=labels), 0)
    latest = store.latest("c_0000abcd")
    assert latest is not None and latest.bounds == {"L1/L2": _BOUND} and latest.labels == labels
    assert latest.as_dict()["labels"] == labels
    con = sqlite3.connect(tmp_path / "r.sqlite")
    row = con.execute("SELECT bounds_json, labels_json FROM reviews").fetchone()
    assert "L1/L2" in row[0] and '"S1": null' in row[1]


def test_version_2_reviews_are_re_keyed_to_the_opaque_case_ids(folder: Folder) -> None:
    path = folder.out / STORE_NAME
    con = sqlite3.connect(path)
    migrate(con, path, target=2)
    con.execute(
        "INSERT INTO reviews (case_id, version, reviewer, created, decision) VALUES"
        " (?, 1, 'ann', '2026-01-01T00:00:00+00:00', 'accept'), "
        " ('gone_00000000', 1, 'ann', '2026-01-01T00:00:00+00:00', 'reject')",
        (folder.dicom_stem,),
    )
    con.commit()
    con.close()
    store = ReviewStore.for_folder(folder.out)
    latest = store.latest(folder.dicom_id)
    assert latest is not None and latest.reviewer == "ann" and latest.bounds is None
    assert store.latest(folder.dicom_stem) is None
    assert set(store.latest_all()) == {folder.dicom_id, "gone_00000000"}  # unknown: kept
