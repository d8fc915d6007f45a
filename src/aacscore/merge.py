"""Joining output folders of ``aacscore score`` (``aacscore merge OUT_PART... -o OUT``), e.g. the
parts of a scheduler's array of jobs (``--num-parts N --part-id K``, each into its own folder).

* ``results.csv``: the rows of every part, in the order the parts are given (each part's rows in
  its order), one header. A film is known by its ``sha256`` and ``settings`` (as on resume): the
  same film with the same settings in several parts is one row (the first; the others are counted
  as duplicates). Refused, naming both parts: one ``file`` with different content or settings in
  two parts, and the same content with different settings (unless ``allow_mixed_settings``:
  then both rows are kept, under their own names). Rows without a ``sha256`` (an input that could
  not be read) are known by their ``file``.
* ``cases/``, ``overlays/``, ``dicom/``: the files of the rows kept, copied; a file already in
  ``OUT`` with other content is refused, naming it. The paths a case JSON records (overlay, DICOM
  SR/SC) are changed to the copies in ``OUT``.
* ``run.json``: every part's run records, each tagged with its part folder (``part_folder``),
  then a record of this merge (``command: "merge"``); ``summary.html`` is written again.

``OUT`` must not be one of the parts. An ``OUT`` that already holds results (an earlier merge)
is joined as if it were the first part, so merging the same parts again changes nothing and
merging parts that have grown adds their new rows. Nothing is written unless the whole merge can
be done.
"""

from __future__ import annotations

import csv
import filecmp
import io
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aacscore._files import atomic_write_text, write_json
from aacscore._version import __version__
from aacscore.batch import case_stem
from aacscore.info import environment_info
from aacscore.outputs.results_csv import LEGACY_COLUMNS, PREVIOUS_COLUMNS
from aacscore.results import RESULT_COLUMNS, Status, counts

log = logging.getLogger(__name__)

_STATUSES = frozenset(s.value for s in Status)
_RECORDED_PATHS = {"overlay": "overlays", "dicom_sr": "dicom", "dicom_sc": "dicom"}
"""Case JSON keys holding a path of ``OUT``, and the folder of each."""


class MergeError(ValueError):
    """Output folders that cannot be merged; the message names the folder or file and why."""


@dataclass(frozen=True)
class MergeSummary:
    """What a merge did: ``rows`` of the merged ``results.csv`` (``counts`` by status),
    ``duplicates`` dropped, output files ``copied``, the ``settings`` hashes of the rows."""

    out_dir: Path
    parts: tuple[Path, ...]
    rows: int
    duplicates: int
    copied: int
    counts: dict[str, int] = field(default_factory=dict)
    settings: tuple[str, ...] = ()

    @property
    def results_csv(self) -> Path:
        """The merged ``results.csv``."""
        return self.out_dir / "results.csv"

    @property
    def exit_code(self) -> int:
        """0 when every merged row is scored (ok or warning), 1 when any failed."""
        return 1 if self.counts.get(Status.FAILED.value, 0) else 0


@dataclass(frozen=True)
class _Row:
    source: Path
    values: dict[str, str]

    @property
    def key(self) -> tuple[str, str]:
        sha = self.values["sha256"]
        return (sha, self.values["settings"]) if sha else ("file", self.values["file"])


def read_part_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/results.csv``, every column of this aacscore (columns an older
    aacscore did not write are empty).

    Raises:
        MergeError: no such file, another header, or a row that is not complete (a part still
            being written, or torn by a crash: run ``aacscore score`` on it again to repair it).
    """
    path = folder / "results.csv"
    if not path.is_file():
        raise MergeError(f"{folder}: not an output folder of aacscore score (no results.csv)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MergeError(f"{path}: cannot be read ({e})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = tuple(reader.fieldnames or ())
    if columns not in (RESULT_COLUMNS, PREVIOUS_COLUMNS, LEGACY_COLUMNS):
        raise MergeError(
            f"{path}: columns {', '.join(columns) or '(none)'} are not those of results.csv"
        )
    rows = []
    for line, r in enumerate(reader, start=2):
        if not r.get("file") or r.get("status") not in _STATUSES or None in r.values():
            raise MergeError(
                f"{path}: row {line} is not complete (a part still being written, or torn by a "
                "crash: run aacscore score on that part again to repair it)"
            )
        rows.append({c: r.get(c) or "" for c in RESULT_COLUMNS})
    return rows


def merge_outputs(
    parts: Sequence[str | Path], out: str | Path, *, allow_mixed_settings: bool = False
) -> MergeSummary:
    """Merge the output folders ``parts`` into ``out`` (see the module docstring).

    Raises:
        MergeError: no parts, a part given twice or that is not an output folder, ``out`` is
            one of the parts or a file, or the parts disagree (see the module docstring)."""
    folders = [Path(p) for p in parts]
    out_dir = Path(out)
    if not folders:
        raise MergeError("no output folders to merge")
    seen: dict[Path, Path] = {}
    for f in folders:
        if f.resolve() in seen:
            raise MergeError(f"{f}: given twice (as {seen[f.resolve()]})")
        seen[f.resolve()] = f
    if out_dir.resolve() in seen:
        raise MergeError(f"--out {out_dir}: is one of the parts; merge into another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise MergeError(f"--out {out_dir}: is a file, not a folder")
    sources = ([out_dir] if (out_dir / "results.csv").is_file() else []) + folders
    rows, duplicates = _merge_rows(sources, allow_mixed_settings)
    copies = [c for r in rows if r.source != out_dir for c in _plan_copies(r, out_dir)]
    runs = _merge_runs(out_dir, folders)

    out_dir.mkdir(parents=True, exist_ok=True)
    copied = 0
    for dest, payload in copies:
        if payload is None:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(payload, str):
            atomic_write_text(dest, payload)
        else:
            tmp = dest.with_name(dest.name + ".merging")
            shutil.copyfile(payload, tmp)
            os.replace(tmp, dest)
        copied += 1
    atomic_write_text(out_dir / "results.csv", _csv_text(r.values for r in rows), fsync=True)
    merged_counts = counts(r.values["status"] for r in rows)
    settings = tuple(dict.fromkeys(r.values["settings"] for r in rows if r.values["settings"]))
    now = datetime.now(timezone.utc).isoformat()
    runs.append(
        {
            "command": "merge",
            "started": now,
            "finished": now,
            "arguments": {
                "parts": [str(f) for f in folders],
                "out": str(out_dir),
                "allow_mixed_settings": allow_mixed_settings,
            },
            "environment": environment_info(),
            "aacscore": __version__,
            "n_inputs": len(rows),
            "duplicates": duplicates,
            "copied": copied,
            "settings_hashes": list(settings),
            "counts": merged_counts,
        }
    )
    write_json(out_dir / "run.json", {"runs": runs})
    _write_summary(out_dir)
    return MergeSummary(
        out_dir, tuple(folders), len(rows), duplicates, copied, merged_counts, settings
    )


def _merge_rows(sources: Sequence[Path], allow_mixed_settings: bool) -> tuple[list[_Row], int]:
    """The rows kept, in order, and how many duplicates were dropped."""
    kept: dict[tuple[str, str], _Row] = {}
    by_file: dict[str, _Row] = {}
    by_sha: dict[str, list[_Row]] = {}
    duplicates = 0
    for src in sources:
        for values in read_part_rows(src):
            row = _Row(src, values)
            if row.key in kept:
                duplicates += 1
                continue
            name = values["file"]
            other = by_file.get(name)
            if other is not None:
                what = (
                    "different content"
                    if other.values["sha256"] != values["sha256"]
                    else "different settings"
                )
                raise MergeError(
                    f"{name}: {what} in {other.source} and {src} (one row per file: merge the "
                    "parts that agree, or score the film again in one of them)"
                )
            sha = values["sha256"]
            mixed = [r for r in by_sha.get(sha, ()) if sha]
            if mixed and not allow_mixed_settings:
                o = mixed[0]
                raise MergeError(
                    f"{name}: scored with settings {values['settings']} in {src} and with "
                    f"{o.values['settings']} in {o.source} ({o.values['file']}); merge parts "
                    "scored alike, or give --allow-mixed-settings to keep both rows"
                )
            kept[row.key] = row
            by_file[name] = row
            if sha:
                by_sha.setdefault(sha, []).append(row)
    return list(kept.values()), duplicates


def _plan_copies(row: _Row, out_dir: Path) -> list[tuple[Path, str | Path | None]]:
    """The files of a kept row to write into ``out_dir``: (destination, text or source file,
    or None when the destination already holds it).

    Raises:
        MergeError: a destination file holds something else."""
    stem = case_stem(row.values["file"])
    plan: list[tuple[Path, str | Path | None]] = []
    case = row.source / "cases" / f"{stem}.json"
    if case.is_file():
        dest = out_dir / "cases" / case.name
        text = _relocated_case(case, out_dir)
        if dest.is_file():
            if dest.read_text(encoding="utf-8") != text:
                raise MergeError(f"{dest}: exists and differs from {case} (the same case?)")
            plan.append((dest, None))
        else:
            plan.append((dest, text))
    for sub, name in (
        ("overlays", f"{stem}.png"),
        ("dicom", f"{stem}_sr.dcm"),
        ("dicom", f"{stem}_sc.dcm"),
    ):
        src = row.source / sub / name
        if not src.is_file():
            continue
        dest = out_dir / sub / name
        if dest.is_file():
            if not filecmp.cmp(src, dest, shallow=False):
                raise MergeError(f"{dest}: exists and differs from {src}")
            plan.append((dest, None))
        else:
            plan.append((dest, src))
    return plan


def _relocated_case(path: Path, out_dir: Path) -> str:
    """The text of a case JSON with the paths it records moved to ``out_dir``.

    Raises:
        MergeError: not a JSON object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MergeError(f"{path}: not a readable case JSON ({e})") from None
    if not isinstance(doc, dict):
        raise MergeError(f"{path}: not a case JSON (not an object)")
    for key, sub in _RECORDED_PATHS.items():
        value = doc.get(key)
        if isinstance(value, str) and value:
            doc[key] = str(out_dir / sub / Path(value).name)
    return json.dumps(doc, indent=2) + "\n"


def _merge_runs(out_dir: Path, folders: Sequence[Path]) -> list[dict[str, Any]]:
    """The run records of ``out_dir`` (an earlier merge) and of each part not already among
    them, each tagged with its part folder."""
    runs = _read_runs(out_dir / "run.json")
    have = {(r.get("part_folder"), r.get("started")) for r in runs}
    for f in folders:
        part_runs = _read_runs(f / "run.json")
        if part_runs and not part_runs[-1].get("finished"):
            log.warning("%s: its last run did not finish (still running, or interrupted)", f)
        for r in part_runs:
            if "part_folder" in r:  # a part that is itself a merge: keep its tags
                tagged = r
            else:
                tagged = {"part_folder": str(f), **r}
            if (tagged.get("part_folder"), tagged.get("started")) not in have:
                have.add((tagged.get("part_folder"), tagged.get("started")))
                runs.append(tagged)
    return runs


def _read_runs(path: Path) -> list[dict[str, Any]]:
    """The run records of a ``run.json`` (none when missing).

    Raises:
        MergeError: unreadable, or not a run record."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MergeError(f"{path}: not readable ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return [r for r in data["runs"] if isinstance(r, dict)]
    if isinstance(data, dict):
        return [data]
    raise MergeError(f"{path}: not a run record")


def _csv_text(rows: Any) -> str:
    """``results.csv`` of ``rows`` (as :class:`~aacscore.outputs.results_csv.ResultsWriter`
    writes it: CRLF records, the columns in order)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(RESULT_COLUMNS)
    for r in rows:
        writer.writerow([r[c] for c in RESULT_COLUMNS])
    return buf.getvalue()


def _write_summary(out: Path) -> None:
    """Write ``OUT/summary.html``; a problem is logged, never raised (the merge is done)."""
    from aacscore.outputs.summary_html import write_summary

    try:
        write_summary(out)
    except Exception as e:  # the page is a convenience: it must not fail a finished merge
        log.warning("%s: summary.html not written: %s", out, e)
