"""Parts of a batch (:func:`aacscore.batch.select_part`) and merging output folders
(:mod:`aacscore.merge`): the parts hold every input once, split by a path key that does not
depend on where the data lies; merged parts give the rows of one run, with their files, run
records and summary; conflicts are refused naming both parts, and nothing is written then."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from aacscore.batch import (
    BatchOptionError,
    Part,
    case_stem,
    parse_part,
    part_of,
    score_batch,
    select_part,
    shard_key,
)
from aacscore.io import InputItem, find_inputs
from aacscore.merge import MergeError, merge_outputs
from aacscore.outputs.results_csv import read_results
from aacscore.results import RESULT_COLUMNS
from tests.batch_fixtures import BAD, Reference, films, reference, rows_of
from tests.batch_fixtures import fake_kwargs as _kwargs

__all__ = ["films", "reference"]  # fixtures


# --- parts -------------------------------------------------------------------------------------


def _tree(root: Path, n: int = 24) -> list[InputItem]:
    items = []
    for i in range(n):
        p = root / f"site{i % 3}" / f"film_{i:02d}.dcm"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        items.append(InputItem(p))
    return items


def test_the_parts_hold_every_input_exactly_once(tmp_path: Path) -> None:
    items = _tree(tmp_path / "in")
    for n in (1, 2, 3, 5):
        parts = [select_part(items, [tmp_path / "in"], Part(n, k)) for k in range(n)]
        chosen = [it for part in parts for it in part]
        assert sorted(it.name for it in chosen) == sorted(it.name for it in items)
        assert len(chosen) == len(items)
        for part in parts:  # each part keeps the input order
            assert part == [it for it in items if it in part]
    assert [len(select_part(items, [tmp_path / "in"], Part(3, k))) for k in range(3)] != [24, 0, 0]
    assert select_part(items, [tmp_path / "in"], None) == items


def test_the_split_follows_the_relative_path_not_where_the_data_lies(tmp_path: Path) -> None:
    here = _tree(tmp_path / "here")
    shutil.copytree(tmp_path / "here", tmp_path / "elsewhere" / "mount")
    there = [
        InputItem(tmp_path / "elsewhere" / "mount" / it.path.relative_to(tmp_path / "here"))
        for it in here
    ]
    for k in range(3):
        a = select_part(here, [tmp_path / "here"], Part(3, k))
        b = select_part(there, [tmp_path / "elsewhere" / "mount"], Part(3, k))
        assert [it.path.name for it in a] == [it.path.name for it in b]
    # not the content: every film here has the same bytes, yet they are spread over the parts
    assert len({part_of(shard_key(it, [tmp_path / "here"]), 3) for it in here}) == 3


def test_the_key_of_each_kind_of_input(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.dcm").write_bytes(b"x")
    with zipfile.ZipFile(root / "a" / "z.zip", "w") as zf:
        zf.writestr("m/y.dcm", b"y")
    listed = tmp_path / "lists" / "films.txt"
    listed.parent.mkdir()
    (listed.parent / "b").mkdir()
    (listed.parent / "b" / "w.dcm").write_bytes(b"w")
    listed.write_text("b/w.dcm\n")
    single = tmp_path / "one" / "single.dcm"
    single.parent.mkdir()
    single.write_bytes(b"s")
    roots = [root, listed, single]
    assert shard_key(InputItem(root / "a" / "x.dcm"), roots) == "a/x.dcm"
    assert shard_key(InputItem(root / "a" / "z.zip", "m/y.dcm"), roots) == "a/z.zip:m/y.dcm"
    assert shard_key(InputItem(listed.parent / "b" / "w.dcm"), roots) == "b/w.dcm"
    assert shard_key(InputItem(single), roots) == "single.dcm"
    assert shard_key(InputItem(tmp_path / "missing.dcm"), roots) == "missing.dcm"
    for key in ("a/x.dcm", "single.dcm"):  # the same on every machine and Python
        digest = hashlib.sha256(key.encode()).hexdigest()
        assert part_of(key, 7) == int(digest[:16], 16) % 7


def test_parts_are_checked() -> None:
    assert parse_part(None, None) is None
    assert parse_part(4, 3) == Part(4, 3) and Part(4, 3).as_dict() == {"num_parts": 4, "part_id": 3}
    with pytest.raises(BatchOptionError, match="--part-id needs --num-parts"):
        parse_part(None, 0)
    with pytest.raises(BatchOptionError, match="--num-parts needs --part-id"):
        parse_part(2, None)
    with pytest.raises(BatchOptionError, match=r"--part-id: 2 is not a part of 2: give 0 to 1"):
        parse_part(2, 2)
    with pytest.raises(BatchOptionError, match="--part-id: -1"):
        parse_part(2, -1)
    with pytest.raises(BatchOptionError, match="--num-parts: 0 parts"):
        parse_part(0, 0)


# --- merge -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(
    films: list[Path], reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The three films scored whole and in two parts (film b fails), with overlays."""
    base = tmp_path_factory.mktemp("merge")
    src = base / "films"
    src.mkdir()
    for p in films:
        shutil.copy(p, src / p.name)
    found = find_inputs([src])
    kwargs = _kwargs(reference, fail_rows=rows_of(films)[BAD])
    score_batch(list(found.items), base / "whole", kwargs, jobs=1, overlay=True)
    parts = []
    for k in range(2):
        items = select_part(list(found.items), [src], Part(2, k))
        out = base / f"part{k}"
        score_batch(items, out, kwargs, jobs=1, overlay=True, part=Part(2, k))
        parts.append(out)
    assert all(read_results(p / "results.csv") for p in parts), "a part is empty: other seed"
    return {"base": base, "whole": base / "whole", "parts": parts}


def _by_file(folder: Path) -> dict[str, dict[str, str]]:
    return {r["file"]: r for r in read_results(folder / "results.csv")}


def test_merged_parts_are_the_rows_and_files_of_one_run(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    summary = merge_outputs(scored["parts"], out)
    assert _by_file(out) == _by_file(scored["whole"])
    assert summary.rows == 3 and summary.duplicates == 0 and summary.exit_code == 1
    assert summary.counts["failed"] == 1 and len(summary.settings) == 1
    header = ",".join(RESULT_COLUMNS) + "\r\n"
    assert (out / "results.csv").read_bytes().startswith(header.encode())
    for name in _by_file(out):
        stem = case_stem(name)
        doc = json.loads((out / "cases" / f"{stem}.json").read_text())
        assert doc["file"] == name
        if doc["status"] != "failed":
            assert Path(doc["overlay"]) == out / "overlays" / f"{stem}.png"
            assert (out / "overlays" / f"{stem}.png").is_file()
    runs = json.loads((out / "run.json").read_text())["runs"]
    assert [r.get("part_folder") for r in runs[:-1]] == [str(p) for p in scored["parts"]]
    assert [r["part"] for r in runs[:-1]] == [{"num_parts": 2, "part_id": k} for k in (0, 1)]
    assert runs[-1]["command"] == "merge" and runs[-1]["counts"] == summary.counts
    assert "<html" in (out / "summary.html").read_text().lower()


def test_merging_again_or_a_part_twice_adds_nothing(scored: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge_outputs(scored["parts"], out)
    before = (out / "results.csv").read_bytes()
    again = merge_outputs(scored["parts"], out)
    assert (out / "results.csv").read_bytes() == before
    assert again.duplicates == 3 and again.copied == 0  # out's rows come first
    runs = json.loads((out / "run.json").read_text())["runs"]
    assert [r.get("command") for r in runs] == [None, None, "merge", "merge"]
    copy = tmp_path / "part0_copy"
    shutil.copytree(scored["parts"][0], copy)
    twice = merge_outputs([*scored["parts"], copy], tmp_path / "twice")
    assert twice.rows == 3 and twice.duplicates == len(read_results(copy / "results.csv"))


def test_bad_folders_are_refused(scored: dict[str, Any], tmp_path: Path) -> None:
    p0, p1 = scored["parts"]
    with pytest.raises(MergeError, match="is one of the parts"):
        merge_outputs([p0, p1], p1)
    with pytest.raises(MergeError, match="given twice"):
        merge_outputs([p0, p0], tmp_path / "o")
    with pytest.raises(MergeError, match=rf"{tmp_path}: not an output folder .*no results.csv"):
        merge_outputs([p0, tmp_path], tmp_path / "o")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MergeError, match="is a file"):
        merge_outputs([p0], tmp_path / "file")
    with pytest.raises(MergeError, match="no output folders"):
        merge_outputs([], tmp_path / "o")
    torn = tmp_path / "torn"
    shutil.copytree(p0, torn)
    with (torn / "results.csv").open("a", newline="") as f:
        f.write("half,a row")
    with pytest.raises(MergeError, match=r"torn.*results.csv: row \d+ is not complete"):
        merge_outputs([p1, torn], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def _edit_rows(folder: Path, **changes: str) -> Path:
    """Change columns of every row of ``folder/results.csv``."""
    rows = read_results(folder / "results.csv")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({**r, **changes})
    (folder / "results.csv").write_text(buf.getvalue(), newline="")
    return folder


def test_parts_that_disagree_are_refused_naming_both(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    p0 = scored["parts"][0]
    other = _edit_rows(shutil.copytree(p0, tmp_path / "resettled"), settings="0123456789ab")
    with pytest.raises(MergeError, match=rf"different settings in {p0} and {other}"):
        merge_outputs([p0, other], tmp_path / "o")
    changed = _edit_rows(shutil.copytree(p0, tmp_path / "changed"), sha256="f" * 64)
    with pytest.raises(MergeError, match=rf"different content in {p0} and {changed}"):
        merge_outputs([p0, changed], tmp_path / "o")
    assert not (tmp_path / "o").exists()
    # the same film under another name, scored with other settings
    moved = tmp_path / "moved"
    shutil.copytree(p0, moved)
    rows = read_results(moved / "results.csv")
    _edit_rows(moved, settings="0123456789ab")
    text = (moved / "results.csv").read_text()
    for r in rows:
        text = text.replace(r["file"], r["file"] + ".copy")
    (moved / "results.csv").write_text(text, newline="")
    with pytest.raises(MergeError, match=rf"scored with settings 0123456789ab in {moved}"):
        merge_outputs([p0, moved], tmp_path / "o")
    kept = merge_outputs([p0, moved], tmp_path / "o", allow_mixed_settings=True)
    assert kept.rows == 2 * len(rows) and len(kept.settings) == 2


def test_a_differing_file_in_out_is_refused_and_nothing_changes(
    scored: dict[str, Any], tmp_path: Path
) -> None:
    p0, p1 = scored["parts"]
    out = tmp_path / "merged"
    merge_outputs([p0], out)
    before = (out / "results.csv").read_bytes()
    assert before == (p0 / "results.csv").read_bytes()  # written as the batch writes it
    (out / "cases").mkdir(exist_ok=True)
    name = read_results(p1 / "results.csv")[0]["file"]
    clash = out / "cases" / f"{case_stem(name)}.json"
    clash.write_text("{}\n")
    with pytest.raises(MergeError, match=rf"{clash}: exists and differs from"):
        merge_outputs([p0, p1], out)
    assert (out / "results.csv").read_bytes() == before
    assert not (out / "overlays" / f"{case_stem(name)}.png").exists()
