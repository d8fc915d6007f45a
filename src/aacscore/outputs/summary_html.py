"""``OUT/summary.html``: one self-contained, offline page summarising an output folder.

The page is built from what ``aacscore score`` wrote: ``results.csv`` (its columns ``file``,
``status``, ``error_code``, ``error``, ``aac24``, ``aac24_sd``, ``group``, ``low_confidence``,
``quality`` and ``qc_flags``; other columns are ignored), ``cases/*.json`` (``file`` and
``overlay``: a case's overlay PNG), ``run.json`` (one run record, or ``{"runs": [record, ...]}``;
the latest is shown) and ``overlays/*.png``. It shows the counts by status and error code, an
AAC-24 histogram and the severity-group table, the failures, the cases that need review, a
contact sheet of overlay thumbnails (each linking to its full-size overlay by a relative path;
at most :data:`MAX_THUMBNAILS`, failures and warnings first) and the run record.

Everything is embedded (inline CSS, an inline SVG histogram, thumbnails as ``data:`` URIs, a
few lines of inline JavaScript to sort tables) and a Content-Security-Policy forbids the page
any request, so it can be mailed or archived on its own. Every string read from the folder is
HTML-escaped. A folder being written (no cases yet, no overlays, torn files) gives a partial
page, never an error; only a folder without ``results.csv`` is refused (:class:`SummaryError`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aacscore._files import atomic_write_bytes, atomic_write_text
from aacscore._version import __version__
from aacscore.codes import ERROR_CODES, FLAGS
from aacscore.io.inputs import OUTPUT_MARK
from aacscore.kauppila import MAX_AAC24
from aacscore.results import STATUSES, Status

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.html"
"""File name of the page inside the output folder."""

MAX_THUMBNAILS = 500
"""Most overlay thumbnails on the contact sheet (about 7 kB each, so at most about 3.5 MB of a
10 000-film batch's page); the others are only in ``overlays/``."""

THUMBNAIL_BOX = (180, 240)
"""Largest thumbnail width and height in pixels (the aspect ratio is kept)."""

THUMBNAIL_THREADS = 8
"""Most threads decoding overlays for thumbnails."""

THUMBNAIL_CACHE = "thumbnails"
"""Folder of ``OUT`` where the thumbnails are kept between writes of the page."""

LOW_QUALITY_FLAG = "low_quality"
"""The flag of a film whose familiarity score is below its threshold."""

REQUIRED_COLUMNS = ("file", "status")
"""Columns without which ``results.csv`` cannot be summarised."""

_ERROR_MEANINGS: dict[str, str] = {code.value: text for code, text in ERROR_CODES.items()}
_FAILED, _WARNING = Status.FAILED.value, Status.WARNING.value
_STATUS_ORDER = {s.value: i for i, s in enumerate((Status.FAILED, Status.WARNING, Status.OK))}


class SummaryError(ValueError):
    """The folder cannot be summarised (it is missing, or has no ``results.csv``)."""


@dataclass(frozen=True)
class CaseRow:
    """One row of ``results.csv`` as the page uses it, with its overlay when one was found."""

    file: str
    status: str
    error_code: str = ""
    error: str = ""
    aac24: float | None = None
    aac24_sd: float | None = None
    group: str = ""
    low_confidence: bool = False
    quality: float | None = None
    flags: tuple[str, ...] = ()
    overlay: Path | None = None

    @property
    def low_quality(self) -> bool:
        """Whether the film carries the ``low_quality`` flag."""
        return LOW_QUALITY_FLAG in self.flags

    @property
    def needs_review(self) -> bool:
        """A scored case with a warning, a low-confidence score or low quality."""
        return self.status != _FAILED and (
            self.status == _WARNING or self.low_confidence or self.low_quality
        )


@dataclass(frozen=True)
class FolderContent:
    """What the page is built from: the rows, the run records (oldest first) and the problems
    met while reading (shown on the page)."""

    out_dir: Path
    cases: tuple[CaseRow, ...]
    runs: tuple[Mapping[str, Any], ...]
    groups_description: str = ""
    problems: tuple[str, ...] = ()


# --- reading -----------------------------------------------------------------------------------


def read_folder(out_dir: str | Path) -> FolderContent:
    """Read ``results.csv``, ``cases/*.json`` and ``run.json`` of an output folder.

    Raises :class:`SummaryError` when the folder or its ``results.csv`` is missing, or when
    ``results.csv`` lacks the ``file`` or ``status`` column. Unreadable case JSONs or
    ``run.json`` are logged and listed in :attr:`FolderContent.problems`."""
    out = Path(out_dir)
    if not out.is_dir():
        raise SummaryError(f"{out}: no such folder")
    csv_path = out / "results.csv"
    if not csv_path.is_file():
        raise SummaryError(f"{csv_path}: not found; is {out} an output folder of `aacscore score`?")
    problems: list[str] = []
    rows = _read_rows(csv_path)
    overlays, groups_description = _read_cases(out, problems)
    runs = _read_runs(out / "run.json", problems)
    cases = tuple(_case_row(r, overlays.get(r["file"])) for r in rows)
    return FolderContent(out, cases, runs, groups_description, tuple(problems))


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise SummaryError(
                    f"{path}: no column {', '.join(missing)}; not a results.csv of aacscore"
                )
            rows = [{k: v or "" for k, v in r.items() if isinstance(k, str)} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SummaryError(f"{path}: cannot be read: {e}") from e
    return [r for r in rows if r.get("file") and r.get("status")]


def _read_cases(out: Path, problems: list[str]) -> tuple[dict[str, Path], str]:
    """Overlay file of each case (by its ``file``) and the severity groups' description."""
    overlays: dict[str, Path] = {}
    description = ""
    cases_dir = out / "cases"
    if not cases_dir.is_dir():
        return overlays, description
    for path in sorted(cases_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            log.warning("%s: not read: %s", path, e)
            problems.append(f"{path.relative_to(out)}: not read ({e})")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("file"), str):
            problems.append(f"{path.relative_to(out)}: no file name in it")
            continue
        groups = doc.get("groups")
        if not description and isinstance(groups, dict):
            description = f"{groups.get('name', '')} ({groups.get('description', '')})"
        overlay = doc.get("overlay")
        if isinstance(overlay, str) and overlay:
            found = _find_overlay(out, overlay)
            if found is not None:
                overlays[doc["file"]] = found
    return overlays, description


def _find_overlay(out: Path, recorded: str) -> Path | None:
    """The overlay file a case JSON names: in ``OUT/overlays/`` by its name (the folder may have
    been moved since), else the recorded path as it stands or relative to ``OUT``."""
    p = Path(recorded)
    for candidate in (out / "overlays" / p.name, p, out / p):
        if candidate.is_file():
            return candidate
    return None


def _read_runs(path: Path, problems: list[str]) -> tuple[Mapping[str, Any], ...]:
    if not path.is_file():
        return ()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        log.warning("%s: not read: %s", path, e)
        problems.append(f"run.json: not read ({e})")
        return ()
    if isinstance(doc, dict) and isinstance(doc.get("runs"), list):
        return tuple(r for r in doc["runs"] if isinstance(r, dict))
    if isinstance(doc, dict):
        return (doc,)
    problems.append("run.json: neither a run record nor {runs: [...]}")
    return ()


def _case_row(r: Mapping[str, str], overlay: Path | None) -> CaseRow:
    return CaseRow(
        file=r["file"],
        status=r["status"],
        error_code=r.get("error_code", ""),
        error=r.get("error", ""),
        aac24=_number(r.get("aac24", "")),
        aac24_sd=_number(r.get("aac24_sd", "")),
        group=r.get("group", ""),
        low_confidence=r.get("low_confidence", "").strip().lower() == "true",
        quality=_number(r.get("quality", "")),
        flags=tuple(f for f in r.get("qc_flags", "").split(";") if f),
        overlay=overlay,
    )


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


# --- HTML helpers ------------------------------------------------------------------------------


def _e(value: object) -> str:
    """HTML-escaped text of any value (quotes included, safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _basename(file: str) -> str:
    """The last component of an input name (a path, or a member of an archive)."""
    return re.split(r"[\\/!]", file.rstrip("/\\"))[-1] or file


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    cls: str = "",
    sortable: bool = True,
    escape: bool = True,
) -> str:
    """A table of cells (escaped unless ``escape`` is False: cells are already HTML)."""
    classes = " ".join(c for c in (cls, "sortable" if sortable else "") if c)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(c) if escape else c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _flag_html(flags: Sequence[str]) -> str:
    return " ".join(
        f'<span class="flag" title="{_e(FLAGS.get(f, ""))}">{_e(f)}</span>' for f in flags
    )


def _file_html(file: str) -> str:
    return f'<span class="file">{_e(file)}</span>'


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f} %" if total else ""


# --- sections ----------------------------------------------------------------------------------


def _counts_section(cases: Sequence[CaseRow]) -> str:
    by_status = Counter(c.status for c in cases)
    statuses = list(STATUSES) + sorted(s for s in by_status if s not in STATUSES)
    total = len(cases)
    tiles = [f'<div class="tile" data-status="all"><b>{total}</b>films</div>'] + [
        f'<div class="tile st-{_e(s)}" data-status="{_e(s)}"><b>{by_status.get(s, 0)}</b>'
        f"{_e(s)}<small>{_pct(by_status.get(s, 0), total)}</small></div>"
        for s in statuses
    ]
    parts = ['<section id="counts"><h2>Counts</h2>', f'<div class="tiles">{"".join(tiles)}</div>']
    failed = [c for c in cases if c.status == _FAILED]
    if failed:
        by_code = Counter(c.error_code or "(none)" for c in failed)
        code_rows = [
            (code, str(n), _pct(n, len(failed)), _ERROR_MEANINGS.get(code, ""))
            for code, n in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        parts.append("<h3>Failures by error code</h3>")
        parts.append(
            _table(("error code", "n", "% of failures", "meaning"), code_rows, cls="counts-code")
        )
    parts.append("</section>")
    return "\n".join(parts)


def _scored(cases: Sequence[CaseRow]) -> list[CaseRow]:
    return [c for c in cases if c.status != _FAILED and c.aac24 is not None]


def _group_order(scored: Sequence[CaseRow]) -> list[str]:
    """Group names from the rows, in the order of their lowest score (low to high)."""
    lowest: dict[str, float] = {}
    for c in scored:
        g = c.group or "(no group)"
        lowest[g] = min(lowest.get(g, math.inf), c.aac24 if c.aac24 is not None else math.inf)
    return sorted(lowest, key=lambda g: (lowest[g], g))


def _histogram_svg(scored: Sequence[CaseRow], groups: Sequence[str]) -> str:
    """Inline SVG of the AAC-24 histogram (bins of 1 point, stacked by severity group)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    edges = [i - 0.5 for i in range(MAX_AAC24 + 2)]
    values = [
        [
            min(max(c.aac24 or 0.0, 0.0), float(MAX_AAC24))
            for c in scored
            if (c.group or "(no group)") == g
        ]
        for g in groups
    ]
    cmap = matplotlib.colormaps["YlOrRd"]
    colours = [cmap(0.3 + 0.6 * i / max(1, len(groups) - 1)) for i in range(len(groups))]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "aacscore-summary"}):
        fig = Figure(figsize=(7.0, 2.6))
        ax = fig.add_subplot()
        ax.hist(
            values,
            bins=edges,
            stacked=True,
            color=colours,
            label=[_mpl_label(g) for g in groups],
            ec="white",
            lw=0.5,
        )
        ax.set_xlim(-0.5, MAX_AAC24 + 0.5)
        ax.set_xticks(range(0, MAX_AAC24 + 1, 2))
        ax.set_xlabel("AAC-24 (predicted; bins of one point)")
        ax.set_ylabel("films")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, title="group", fontsize="small")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(
            buf,
            format="svg",
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]


def _mpl_label(text: str) -> str:
    """``text`` as a matplotlib label taken literally (no mathtext, not hidden by a ``_``)."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def _distribution_section(content: FolderContent) -> str:
    scored = _scored(content.cases)
    parts = ['<section id="distribution"><h2>AAC-24 distribution</h2>']
    if not scored:
        parts.append("<p>No film has been scored yet.</p></section>")
        return "\n".join(parts)
    groups = _group_order(scored)
    values = sorted(c.aac24 for c in scored if c.aac24 is not None)
    median = statistics.median(values)
    parts.append(
        f"<p>{len(scored)} scored films: median AAC-24 {median:.1f}, "
        f"mean {sum(values) / len(values):.1f}, range {values[0]:.1f}–{values[-1]:.1f}.</p>"
    )
    parts.append(f'<figure class="hist">{_histogram_svg(scored, groups)}</figure>')
    rows = []
    for g in groups:
        members = [
            c.aac24 for c in scored if (c.group or "(no group)") == g and c.aac24 is not None
        ]
        rows.append(
            (
                g,
                str(len(members)),
                _pct(len(members), len(scored)),
                f"{min(members):.1f}–{max(members):.1f}",
            )
        )
    parts.append(
        _table(("group", "n", "% of scored", "AAC-24 range"), rows, cls="groups", sortable=False)
    )
    if content.groups_description:
        parts.append(f'<p class="note">Severity groups: {_e(content.groups_description)}.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _scroll(table: str) -> str:
    return f'<div class="scroll">{table}</div>'


def _failures_section(cases: Sequence[CaseRow]) -> str:
    failed = [c for c in cases if c.status == _FAILED]
    parts = [f'<section id="failures"><h2>Failures ({len(failed)})</h2>']
    if not failed:
        parts.append("<p>No film failed.</p></section>")
        return "\n".join(parts)
    rows = [
        (
            f'<span class="code" title="{_e(_ERROR_MEANINGS.get(c.error_code, ""))}">'
            f"{_e(c.error_code or '(none)')}</span>",
            _e(c.error),
            _file_html(c.file),
        )
        for c in failed
    ]
    parts.append(
        _scroll(_table(("error code", "reason", "file"), rows, cls="failures", escape=False))
    )
    parts.append("</section>")
    return "\n".join(parts)


def _review_section(cases: Sequence[CaseRow]) -> str:
    review = [c for c in cases if c.needs_review]
    n_warn = sum(c.status == _WARNING for c in review)
    n_conf = sum(c.low_confidence for c in review)
    n_qual = sum(c.low_quality for c in review)
    parts = [
        f'<section id="review"><h2>Needs review ({len(review)})</h2>',
        f"<p>{n_warn} with a warning, {n_conf} with a low-confidence score, "
        f"{n_qual} of low quality (unfamiliar to the models). Hover a flag for its meaning.</p>",
    ]
    if not review:
        parts.append("</section>")
        return "\n".join(parts)
    by_flag = Counter(f for c in review for f in c.flags)
    flag_rows = [
        (_flag_html([f]), str(n), _e(FLAGS.get(f, "")))
        for f, n in sorted(by_flag.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if flag_rows:
        parts.append(_table(("flag", "n", "meaning"), flag_rows, cls="flags", escape=False))
    rows = [
        (
            _file_html(c.file),
            _e(c.status),
            _e(_num(c.aac24) + (f" ± {_num(c.aac24_sd)}" if c.aac24_sd is not None else "")),
            _e(c.group),
            "yes" if c.low_confidence else "",
            _e(_num(c.quality, 3)),
            _flag_html(c.flags),
        )
        for c in review
    ]
    header = ("file", "status", "AAC-24 ± SD", "group", "low confidence", "quality", "flags")
    parts.append(_scroll(_table(header, rows, cls="review", escape=False)))
    parts.append("</section>")
    return "\n".join(parts)


def _thumbnail(path: Path, cache: Path | None = None) -> tuple[str, int, int] | None:
    """A JPEG thumbnail of an overlay as a ``data:`` URI with its size, or None (logged).

    With ``cache`` (a folder), the JPEG is kept there as ``<overlay stem>.jpg`` and reused while
    it is newer than the overlay, so re-writing the page of a large batch decodes only the new
    overlays."""
    from PIL import Image

    cached = None if cache is None else cache / f"{path.stem}.jpg"
    try:
        if cached is not None and cached.is_file():
            if cached.stat().st_mtime_ns >= path.stat().st_mtime_ns:
                with Image.open(cached) as img:
                    w, h = img.size
                data = base64.b64encode(cached.read_bytes()).decode("ascii")
                return f"data:image/jpeg;base64,{data}", w, h
        with Image.open(path) as img:
            img.draft("RGB", THUMBNAIL_BOX)
            img.thumbnail(THUMBNAIL_BOX)
            rgb = img.convert("RGB")
            buf = io.BytesIO()
            # the comment marks it as ours: collecting inputs skips it (never scored as a film)
            comment = f"{OUTPUT_MARK} {__version__} thumbnail".encode()
            rgb.save(buf, format="JPEG", quality=75, optimize=True, comment=comment)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        log.warning("%s: no thumbnail: %s", path, e)
        return None
    if cached is not None:
        try:
            atomic_write_bytes(cached, buf.getvalue())
        except OSError as e:  # a read-only folder: the page is still written
            log.debug("%s: thumbnail not cached: %s", cached, e)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"data:image/jpeg;base64,{data}", rgb.width, rgb.height


def _href(target: Path, base: Path) -> str:
    """URL of ``target`` relative to the folder ``base``."""
    rel = os.path.relpath(target.resolve(), base.resolve())
    return quote(Path(rel).as_posix())


def _contact_sheet_section(content: FolderContent, max_thumbnails: int) -> str:
    with_overlay = [c for c in content.cases if c.overlay is not None]
    with_overlay.sort(key=lambda c: _STATUS_ORDER.get(c.status, len(_STATUS_ORDER)))
    shown = with_overlay[: max(0, max_thumbnails)]
    parts = [f'<section id="overlays"><h2>Overlays ({len(with_overlay)})</h2>']
    if not with_overlay:
        parts.append("<p>No overlay was written (score with --overlay to get them).</p></section>")
        return "\n".join(parts)
    note = "Failures first, then warnings, then the others; click a thumbnail for the full overlay."
    if len(shown) < len(with_overlay):
        note += (
            f" Showing the first {len(shown)} of {len(with_overlay)} (at most {max_thumbnails}"
            " thumbnails); the others are in overlays/."
        )
    parts.append(f'<p class="note">{_e(note)}</p><div class="sheet">')
    missing = 0
    paths = [c.overlay for c in shown if c.overlay is not None]
    with ThreadPoolExecutor(max_workers=max(1, min(THUMBNAIL_THREADS, os.cpu_count() or 1))) as ex:
        cache = content.out_dir / THUMBNAIL_CACHE
        thumbs = list(ex.map(lambda p: _thumbnail(p, cache), paths))  # decoding frees the GIL
    for c, thumb in zip(shown, thumbs, strict=True):
        assert c.overlay is not None
        if thumb is None:
            missing += 1
            continue
        uri, w, h = thumb
        score = f"AAC-24 {_num(c.aac24)}" if c.aac24 is not None else (c.error_code or "no score")
        caption = " · ".join(x for x in (score, c.group, c.status) if x)
        parts.append(
            f'<figure class="thumb st-{_e(c.status)}">'
            f'<a href="{_e(_href(c.overlay, content.out_dir))}">'
            f'<img src="{uri}" width="{w}" height="{h}" alt="overlay of {_e(_basename(c.file))}">'
            f'</a><figcaption><span class="file" title="{_e(c.file)}">{_e(_basename(c.file))}'
            f"</span><br>{_e(caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    if missing:
        parts.append(f'<p class="note">{missing} overlay(s) could not be read for a thumbnail.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _mapping(v: object) -> Mapping[str, Any]:
    """``v`` when it is a JSON object, else an empty one (a record from a file may be odd)."""
    return v if isinstance(v, dict) else {}


def _value(v: object) -> str:
    """A JSON value as text: strings as they are, anything else as JSON."""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def _run_section(runs: Sequence[Mapping[str, Any]]) -> str:
    parts = ['<section id="run"><h2>Run record</h2>']
    if not runs:
        parts.append("<p>No run.json (yet).</p></section>")
        return "\n".join(parts)
    rec = runs[-1]
    env = _mapping(rec.get("environment"))
    title = f"Latest run ({len(runs)} of {len(runs)})"
    finished = rec.get("finished") or "not finished (running, or interrupted)"
    facts = [
        ("aacscore", env.get("aacscore", "")),
        ("python", env.get("python", "")),
        ("platform", env.get("platform", "")),
        ("device", env.get("device", "")),
        ("started", rec.get("started", "")),
        ("finished", finished),
        ("inputs", rec.get("n_inputs", "")),
        ("already done before this run", rec.get("n_skipped_already_done", "")),
        ("worker processes", rec.get("jobs", "")),
    ]
    parts.append(f"<h3>{_e(title)}</h3>")
    parts.append(
        _table(
            ("", ""),
            [(k, _value(v)) for k, v in facts if v not in ("", None)],
            cls="kv",
            sortable=False,
        )
    )
    parts.append(_models_html(rec.get("models")))
    args = rec.get("arguments")
    if isinstance(args, dict) and args:
        parts.append("<h3>Arguments</h3>")
        parts.append(
            _table(
                ("argument", "value"),
                [(k, _value(v)) for k, v in args.items()],
                cls="kv",
                sortable=False,
            )
        )
    parts.append(_skipped_html(rec.get("skipped_inputs")))
    if len(runs) > 1:
        parts.append("<h3>All runs</h3>")
        rows = []
        for i, r in enumerate(runs, 1):
            c = _mapping(r.get("counts"))
            rows.append(
                (
                    str(i),
                    _value(r.get("started", "")),
                    _value(r.get("finished") or "not finished"),
                    _value(r.get("n_inputs", "")),
                    ", ".join(f"{k} {v}" for k, v in c.items()),
                )
            )
        parts.append(
            _table(("run", "started", "finished", "inputs", "counts after it"), rows, cls="runs")
        )
    parts.append('<p class="note">The full record is in <a href="run.json">run.json</a>.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _models_html(models: object) -> str:
    if not isinstance(models, dict) or not models:
        return ""
    rows: list[tuple[str, str, str, str]] = []
    for name, info in models.items():
        if not isinstance(info, dict):
            rows.append((str(name), "", "", _value(info)))
            continue
        hashes = info.get("sha256")
        if isinstance(hashes, dict) and hashes:
            for file, digest in hashes.items():
                rows.append((str(name), _value(info.get("path", "")), str(file), _value(digest)))
        else:
            rows.append(
                (str(name), _value(info.get("path", "")), "", _value(info.get("error", "")))
            )
    return "<h3>Models</h3>" + _table(
        ("model", "path", "file", "sha256"), rows, cls="models", sortable=False
    )


def _skipped_html(skipped: object) -> str:
    items = skipped if isinstance(skipped, list) else []
    head = f"<h3>Skipped inputs ({len(items)})</h3>"
    if not items:
        return head + "<p>No file found in the inputs was skipped.</p>"
    rows = [
        (_value(s.get("file", "")), _value(s.get("reason", "")))
        if isinstance(s, dict)
        else (_value(s), "")
        for s in items
    ]
    return (
        head
        + f"<details><summary>{len(items)} file(s) found in the inputs but not scored</summary>"
        + _scroll(_table(("file", "reason"), rows, cls="skipped"))
        + "</details>"
    )


# --- page --------------------------------------------------------------------------------------

_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

_CSS = """
:root{--ok:#2e7d32;--warning:#b26a00;--failed:#c62828}
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:72em;
margin:0 auto;padding:0 1.2em 2em;color:#222;line-height:1.4;font-size:15px}
header{border-bottom:1px solid #ddd;padding:1em 0 .6em}h1{margin:.2em 0;font-size:1.6em}
h2{margin-top:1.6em;border-bottom:1px solid #eee;padding-bottom:.2em}h3{margin:1.2em 0 .4em}
.banner{background:#fff4e5;border:1px solid #f0c36d;padding:.4em .8em;border-radius:4px}
nav a{margin-right:1em}.note{color:#555;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d0d0;padding:.2em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}table.sortable th{cursor:pointer}
table.sortable th:hover{background:#e6e6e6}
.scroll{max-height:30em;overflow:auto;border:1px solid #eee}
.scroll table{margin:0}
.file{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;overflow-wrap:anywhere}
td{overflow-wrap:break-word}.code,.flag{white-space:nowrap}
.flag,.code{display:inline-block;background:#eef;border-radius:3px;padding:0 .3em;margin:1px;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;cursor:help}
.tiles{display:flex;gap:.8em;flex-wrap:wrap;margin:.6em 0}
.tile{border:1px solid #ccc;border-radius:6px;padding:.4em 1em;min-width:6em;text-align:center}
.tile b{display:block;font-size:1.6em}.tile small{display:block;color:#666}
.tile.st-ok{border-color:var(--ok);color:var(--ok)}
.tile.st-warning{border-color:var(--warning);color:var(--warning)}
.tile.st-failed{border-color:var(--failed);color:var(--failed)}
figure.hist{margin:.5em 0}figure.hist svg{width:100%;max-width:56em;height:auto}
.sheet{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-start}
.thumb{margin:0;width:184px;border:2px solid #ccc;border-radius:4px;padding:2px;
font-size:.8em;background:#fafafa}
.thumb img{display:block;margin:0 auto;max-width:100%;height:auto;background:#000}
.thumb figcaption{padding:.2em;overflow-wrap:anywhere}
.thumb.st-ok{border-color:var(--ok)}.thumb.st-warning{border-color:var(--warning)}
.thumb.st-failed{border-color:var(--failed)}
table.kv td:first-child{color:#555;white-space:nowrap}table.kv thead{display:none}
table.models td:last-child{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8em}
footer{margin-top:2em;border-top:1px solid #ddd;padding-top:.6em;color:#555;font-size:.9em}
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function(t){
 t.querySelectorAll("th").forEach(function(th,i){th.title="click to sort";
  th.addEventListener("click",function(){
   var asc=th.dataset.asc!=="1";th.dataset.asc=asc?"1":"0";var b=t.tBodies[0];
   var rows=Array.prototype.slice.call(b.rows);
   rows.sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent;
    var na=parseFloat(a),nc=parseFloat(c);
    var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});
   rows.forEach(function(r){b.appendChild(r);});});});});
"""

_DISCLAIMER = (
    "Research use only; not a medical device. Scores are automated estimates and every "
    "flagged film needs a human look."
)


def render_summary(
    content: FolderContent, *, max_thumbnails: int = MAX_THUMBNAILS, now: datetime | None = None
) -> str:
    """The HTML page of an output folder's content."""
    generated = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    title = f"aacscore summary: {content.out_dir.name or content.out_dir}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="banner"><strong>{_e(_DISCLAIMER)}</strong></p>',
        f'<p class="note">Folder {_e(content.out_dir)}; page written {_e(generated)} by '
        f'aacscore {_e(__version__)}. Files: <a href="results.csv">results.csv</a>, '
        '<a href="run.json">run.json</a>, <a href="cases/">cases/</a>, '
        '<a href="overlays/">overlays/</a>.</p>',
        '<nav><a href="#counts">Counts</a><a href="#distribution">Distribution</a>'
        '<a href="#failures">Failures</a><a href="#review">Needs review</a>'
        '<a href="#overlays">Overlays</a><a href="#run">Run</a></nav></header>',
    ]
    if content.problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in content.problems)
        parts.append(
            '<section class="problems"><h2>Problems reading the folder</h2>'
            f"<ul>{items}</ul></section>"
        )
    parts += [
        _counts_section(content.cases),
        _distribution_section(content),
        _failures_section(content.cases),
        _review_section(content.cases),
        _contact_sheet_section(content, max_thumbnails),
        _run_section(content.runs),
        f"<footer>{_e(_DISCLAIMER)} Made by aacscore {_e(__version__)}.</footer>",
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_summary(out_dir: str | Path, *, max_thumbnails: int = MAX_THUMBNAILS) -> Path:
    """(Re)write ``OUT/summary.html`` atomically from the folder's current content."""
    content = read_folder(out_dir)
    path = Path(out_dir) / SUMMARY_NAME
    atomic_write_text(path, render_summary(content, max_thumbnails=max_thumbnails))
    log.info("wrote %s (%d cases)", path, len(content.cases))
    return path


__all__ = [
    "MAX_THUMBNAILS",
    "SUMMARY_NAME",
    "CaseRow",
    "FolderContent",
    "SummaryError",
    "read_folder",
    "render_summary",
    "write_summary",
]
