"""Mutation testing of the modules where a silent bug costs most (mutmut, one module at a time).

Usage::

    python benchmarks/mutation.py [--phase before|after] [--modules kauppila keys ...]
        [--max-children 1] [--out benchmarks/results/mutation.json]

``make mutation`` runs it with the defaults (all modules, phase ``after``). It is not part of
``make test`` / CI: too slow.

For each module it deletes ``mutants/``, runs ``mutmut run --max-children N`` with the
``[tool.mutmut]`` settings of pyproject.toml narrowed to that module (``only_mutate``) and to that
module's own tests (the test selection), reads mutmut's per-file results
(``mutants/<path>.meta``) and the diff of every surviving mutant, and writes them under
``modules.<name>.<phase>`` in the JSON: the number of mutants, killed, survived, timeout (and any
other mutmut status), the surviving mutants with a one-line description of the change, the
command and the date. The other phase's figures are kept, so a rerun after new tests stays next
to the first run. Survivors listed in :data:`EQUIVALENT` (mutants that change no observable
behaviour) are labelled with the reason in the JSON.

mutmut numbers the mutants of a function in a fixed order, so as long as ``src`` is unchanged a
name (``aacscore.keys.x_case_key__mutmut_7``) means the same mutant in both phases.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "kauppila": ("src/aacscore/kauppila.py", ("tests/test_kauppila.py",)),
    "keys": ("src/aacscore/keys.py", ("tests/test_keys.py",)),
    "outputs.results_csv": (
        "src/aacscore/outputs/results_csv.py",
        ("tests/outputs/test_results_csv.py",),
    ),
    "vertebrae": ("src/aacscore/vertebrae.py", ("tests/test_vertebrae.py",)),
    "io.dicom": ("src/aacscore/io/dicom.py", ("tests/io",)),
    "aorta.roi": ("src/aacscore/aorta/roi.py", ("tests/aorta",)),
    "results": ("src/aacscore/results.py", ("tests/test_results.py",)),
    "batch.plan": (
        "src/aacscore/batch.py",
        ("tests/test_batch_plan.py", "tests/test_batch_steps.py"),
    ),
    "batch.run": (
        "src/aacscore/batch.py",
        ("tests/test_batch.py", "tests/test_batch_resume.py", "-k", "not worker"),
    ),
}
"""Module (relative to ``aacscore``) -> (source file, its own tests and pytest options).

``batch`` has two entries over the same file: ``batch.plan`` (its decisions and the steps around
each case, against the fast tests without models or worker processes) and ``batch.run`` (the code
that runs cases: :data:`SAMPLES`, against the in-process batch tests with fake stages; the
worker-pool tests spawn processes and take 20-40 s each, too slow to run per mutant)."""

TIMEOUT_CONSTANT_S: dict[str, float] = {"batch.run": 60.0}
"""mutmut's ``timeout_constant`` per module (default 1 s): mutmut kills a mutant's test run at
30 x (the tests' measured time + this) CPU seconds; the in-process batch tests are often not in
mutmut's per-test timings, which left a 30 s limit that the unmutated tests already exceed."""

_RUN_FUNCTIONS = (
    "x_score_batch",
    "x_complete_case",
    "x_process_item",
    "xǁLocalEngineǁrun",
    "xǁCaseJobǁscore",
)
SAMPLES: dict[str, tuple[str, ...]] = {
    "batch.run": tuple(f"aacscore.batch.{f}__mutmut_*0" for f in _RUN_FUNCTIONS),
}
"""Modules run on a systematic sample of mutants (mutmut name patterns, fnmatch): here one mutant
in ten (numbers ending in 0) of the functions that run the cases; the counts are of the sample
only."""

_STRICT_ZIP = "zip(..., strict=True) -> strict=None/False/default: the lengths are equal by "
_ENC = "encoding 'utf-8' -> 'UTF-8': codec names are case-insensitive, the same codec"
_NL_WRITE = (
    "newline='' -> default on an append: csv writes \\r\\n itself and on POSIX the default "
    "translation leaves \\n alone, so the bytes are the same"
)

EQUIVALENT: dict[str, str] = {
    "aacscore.keys.x_case_key__mutmut_5": (
        "`if text` -> `if text or True`: for an empty text re.split gives [''], the same ''"
    ),
    **{
        f"aacscore.kauppila.x__segment_values__mutmut_{i}": _STRICT_ZIP
        + "construction (the length of a sequence is checked first, a mapping gives 8)"
        for i in (13, 16, 17)
    },
    **{
        f"aacscore.kauppila.x_parse_groups__mutmut_{i}": _STRICT_ZIP
        + "construction (lows and highs both have len(bounds) + 1 items)"
        for i in (33, 36, 37)
    },
    **{
        f"aacscore.kauppila.xǁKauppilaScoreǁas_dict__mutmut_{i}": _STRICT_ZIP
        + "construction (__post_init__ refuses anything but 8 grades)"
        for i in (5, 8, 9)
    },
    **{
        f"aacscore.kauppila.xǁSeverityGroupsǁdescribe__mutmut_{i}": _STRICT_ZIP
        + "construction (__post_init__ checks len(labels) == len(upper_bounds) + 1)"
        for i in (4, 7, 8)
    },
    **{
        f"aacscore.outputs.results_csv.{k}": _ENC
        for k in (
            "x_read_results__mutmut_8",
            "xǁResultsWriterǁ_recover__mutmut_13",
            "xǁResultsWriterǁwrite__mutmut_13",
        )
    },
    "aacscore.outputs.results_csv.xǁResultsWriterǁwrite__mutmut_4": _NL_WRITE,
    "aacscore.outputs.results_csv.xǁResultsWriterǁwrite__mutmut_7": _NL_WRITE,
    "aacscore.outputs.results_csv.xǁResultsWriterǁ_recover__mutmut_15": (
        "`text if text.endswith('\\n') else text[:rfind+1]` -> always the slice: for a text "
        "ending in \\n the slice is the whole text"
    ),
    "aacscore.outputs.results_csv.xǁResultsWriterǁ_recover__mutmut_18": (
        "endswith('\\n') -> endswith('XX\\nXX') (never true): the slice branch, which gives "
        "the whole text when it ends in \\n (see _recover__mutmut_15)"
    ),
    **{
        f"aacscore.vertebrae.x_kauppila_bounds__mutmut_{i}": _STRICT_ZIP
        + "construction (two names, two OUTER_LEVELS)"
        for i in (6, 9, 14)
    },
    "aacscore.vertebrae.x_kauppila_bounds__mutmut_17": (
        "`if name in discs` -> always call outer_disc_problem: a disc is missing from discs only "
        "when one of its bodies is, and outer_disc_problem returns None then"
    ),
    **{
        f"aacscore.vertebrae.x_unit__mutmut_{i}": (
            "np.asarray(v, dtype=float64) -> no dtype: a / n is float64 anyway for numeric input"
        )
        for i in (3, 5)
    },
    **{
        f"aacscore.vertebrae.xǁVertebraǁ__post_init____mutmut_{i}": (
            "np.asarray(corners, dtype=float64) -> no dtype: readonly() converts to float64 "
            "right after, and the shape / finiteness checks agree for numeric corners"
        )
        for i in (3, 5)
    },
    **{
        f"aacscore.io.dicom.x__inverted__mutmut_{i}": (
            "the PresentationLUTShape default '' -> None / missing / 'XXXX': every one of them "
            "differs from 'INVERSE', so a film without the element is not inverted either way"
        )
        for i in (6, 8, 12, 13)
    },
    **{
        f"aacscore.vertebrae.{k}": (
            "np.asarray(..., dtype=float64) -> no dtype: the arithmetic that follows (or the "
            "Vertebra it builds) gives float64 anyway for numeric input"
        )
        for k in (
            *(f"x_distance_mm__mutmut_{i}" for i in (4, 6, 8, 10)),
            "x_vertebrae_from_corners__mutmut_8",
            "x_vertebrae_from_corners__mutmut_10",
            *(f"xǁBoundǁscaled__mutmut_{i}" for i in (3, 5)),
            *(f"xǁVertebraǁscaled__mutmut_{i}" for i in (3, 5)),
        )
    },
    "aacscore.vertebrae.xǁVertebraǁscaled__mutmut_10": (
        "spacing_mm=None -> left out: None is the field's default"
    ),
    **{
        f"aacscore.vertebrae.xǁVertebraǁto_dict__mutmut_{i}": _STRICT_ZIP
        + "construction (4 corner names, corners checked to be 4x2)"
        for i in (6, 9, 10)
    },
    "aacscore.vertebrae.x_outer_disc_problem__mutmut_31": (
        "`ref = L1/L2 height if name == 'T12/L1' else None` -> always the L1/L2 height: for "
        "L4/L5 the next statement replaces ref with the L3/L4 height anyway"
    ),
    **{
        f"aacscore.io.dicom.{k}": why
        for why, keys in {
            "the default index of apply_voi / apply_windowing is 0, the same": (
                "x__grey_pipeline__mutmut_99",
                "x__grey_pipeline__mutmut_108",
                "x__grey_pipeline__mutmut_135",
                "x__grey_pipeline__mutmut_151",
            ),
            "window index 1 for the ends: apply_windowing maps -inf/inf to the output range's "
            "ends whatever the centre/width (and ignores the index for a single value)": (
                "x__grey_pipeline__mutmut_154",
            ),
            "np.errstate over/invalid: apply_windowing on -inf/inf raises no floating-point "
            "warning for LINEAR or SIGMOID (checked with numpy 2.4, pydicom 3.0)": (
                "x__grey_pipeline__mutmut_137",
                "x__grey_pipeline__mutmut_138",
                "x__grey_pipeline__mutmut_139",
                "x__grey_pipeline__mutmut_140",
            ),
            "np.issubdtype(None, integer) is False: integer values are then rinted and cast to "
            "int64, the same values": ("x__grey_pipeline__mutmut_86",),
            "np.arange of Python ints is int64 anyway": (
                "x__lut_entries__mutmut_11",
                "x__lut_entries__mutmut_14",
            ),
            "more LUT entries than the LUT holds: apply_voi clips them to the last entry, so "
            "the range's maximum is the same": (
                "x__lut_entries__mutmut_7",
                "x__lut_entries__mutmut_8",
            ),
            "a LUT has at least one entry (a descriptor count of 0 means 2**16), so the "
            "empty-array branch is never taken": (
                "x__lut_range__mutmut_3",
                "x__lut_range__mutmut_6",
            ),
            "PhotometricInterpretation default '' -> None / missing: `None or ''` is ''": (
                "x_read_dicom__mutmut_52",
                "x_read_dicom__mutmut_54",
            ),
            "PixelRepresentation default 0 -> None: `None == 1` is False, like `0 == 1`": (
                "x_read_dicom__mutmut_213",
            ),
            "ascontiguousarray dtype float32 -> None: the pixels are float32 already": (
                "x_read_dicom__mutmut_350",
                "x_read_dicom__mutmut_352",
            ),
            "name in unit_range for a colour image: its range [0, 2**bits - 1] is always "
            "valid, so the error naming the file cannot happen": ("x_read_dicom__mutmut_262",),
            "getattr(ds, 'file_meta') without a default in _header: _transfer_syntax always "
            "sets file_meta first": ("x__header__mutmut_14",),
            "codec name 'ascii' -> 'ASCII': codec names are case-insensitive": (
                "x__raw_text__mutmut_13",
            ),
            "`elem is not None or True`: both callers check that the keyword is in the "
            "dataset, so elem is never None": ("x__raw_text__mutmut_18",),
            "'' -> 'XXXX' for a missing element: never missing (see _raw_text__mutmut_18)": (
                "x__raw_text__mutmut_21",
            ),
        }.items()
        for k in keys
    },
    **{
        f"aacscore.batch.{k}": why
        for why, keys in {
            _STRICT_ZIP + "construction (locs and digests are made from items, one per item)": (
                "x_plan_batch__mutmut_42",
                "x_plan_batch__mutmut_46",
                "x_plan_batch__mutmut_47",
                "x_plan_batch__mutmut_123",
                "x_plan_batch__mutmut_126",
                "x_plan_batch__mutmut_127",
            ),
            "the 'loc'/'sha' tags only keep location keys apart from digest keys in one dict; "
            "any two distinct tags do": (
                "x_plan_batch__mutmut_50",
                "x_plan_batch__mutmut_51",
                "x_plan_batch__mutmut_54",
                "x_plan_batch__mutmut_55",
            ),
            "claiming the row resumed at an input's own path: no later search can take it "
            "(moved rows and same-bytes rows must be at no input's path, and another input at "
            "that path is a duplicate)": ("x_plan_batch__mutmut_99",),
            "claiming a moved row: no later search can take it (it is at no input's path, and "
            "another input with its bytes is a duplicate)": ("x_plan_batch__mutmut_117",),
            "`ok = None` on an unparsable spacing: `not None` refuses it like `not False`": (
                "x_check_options__mutmut_23",
            ),
            "groups default 'lewis' -> None / no default / 'LEWIS': parse_groups(None) is the "
            "default (lewis) groups and preset names are case-insensitive": (
                "x_check_options__mutmut_29",
                "x_check_options__mutmut_31",
                "x_check_options__mutmut_35",
            ),
            "getattr(scorer, '' -> 'XXXX', None): neither names an attribute, both give None": (
                "x_batch_settings__mutmut_20",
            ),
            _ENC: ("x__read_runs__mutmut_6",),
            "`DUPLICATE or same_as is not None`: plan_batch sets same_as only on DUPLICATE "
            "plans, and every DUPLICATE plan has one": ("x_score_batch__mutmut_210",),
        }.items()
        for k in keys
    },
}
"""Surviving mutants that change no observable behaviour: mutant name -> why."""

NOT_KILLED: dict[str, str] = {
    **{
        f"aacscore.outputs.results_csv.{k}": (
            "encoding='utf-8' -> None (the locale's encoding): the same in the UTF-8 locales the "
            "tests run in; it would differ only under a non-UTF-8 locale, which a test cannot "
            "switch to from inside the process"
        )
        for k in (
            "x_read_results__mutmut_2",
            "x_read_results__mutmut_4",
            "xǁResultsWriterǁ_recover__mutmut_11",
            "xǁResultsWriterǁwrite__mutmut_5",
            "xǁResultsWriterǁwrite__mutmut_8",
        )
    },
    "aacscore.batch.x__read_runs__mutmut_4": (
        "encoding='utf-8' -> None (the locale's encoding): the same in the UTF-8 locales the tests "
        "run in"
    ),
    "aacscore.vertebrae.x_outer_disc_problem__mutmut_28": (
        "max(height, 1e-6) -> max(height, 1.000001): differs only for an L1/L4 body under 1 px high"
    ),
    "aacscore.vertebrae.x_outer_disc_problem__mutmut_84": (
        "max(ref, 1e-6) -> max(ref, 1.000001) in the message's ratio only: differs only for a "
        "neighbouring disc under 1 px high"
    ),
    **{
        f"aacscore.io.dicom.{k}": why
        for why, keys in {
            "the file name only reaches a debug log line": (
                "x_read_dicom__mutmut_12",
                "x__decode__mutmut_2",
                "xǁ_PluginFailuresǁ__init____mutmut_1",
            ),
            "needs a header value whose conversion raises inside pydicom; the string VRs of "
            "METADATA_KEYS do not raise under the default reading validation": (
                "x__metadata__mutmut_8",
            ),
        }.items()
        for k in keys
    },
}
"""Surviving mutants left alive on purpose (not equivalent, not worth a test): name -> why."""


def run_mutmut_in_process(module: str, max_children: int, names: list[str]) -> None:
    """Run mutmut for one module (called in a child process: mutmut keeps global state)."""
    from mutmut import configuration
    from mutmut.__main__ import cli

    source, tests = MODULES[module]
    config = configuration._load_config()  # the [tool.mutmut] table of pyproject.toml
    configuration._config = dataclasses.replace(
        config,
        only_mutate=[source],
        pytest_add_cli_args_test_selection=list(tests),
        timeout_constant=TIMEOUT_CONSTANT_S.get(module, config.timeout_constant),
    )
    names = names or list(SAMPLES.get(module, ()))
    cli(["run", "--max-children", str(max_children), *names], standalone_mode=True)


def one_line(diff: str) -> str:
    """``- old`` / ``+ new`` lines of a mutant's diff as ``old  ->  new`` (one line)."""
    removed = [ln[1:].strip() for ln in diff.splitlines() if ln[:1] == "-" and ln[:3] != "---"]
    added = [ln[1:].strip() for ln in diff.splitlines() if ln[:1] == "+" and ln[:3] != "+++"]
    return f"{' / '.join(removed)}  ->  {' / '.join(added)}"


def not_killed_reason(name: str, change: str) -> str | None:
    """Why a survivor is left alive on purpose, or None."""
    if name in NOT_KILLED:
        return NOT_KILLED[name]
    if re.match(r"\s*(log|logger)\.debug\(", change):
        return "only changes the text or arguments of a debug log line"
    return None


def collect(
    module: str, rerun: set[str] | None = None, before: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Counts and survivors of the last mutmut run (read from ``mutants/``).

    With ``rerun`` (the survivors of ``before`` given to ``mutmut run``), the other mutants keep
    their ``before`` status: the ones killed then stay killed (tests were only added since).
    """
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    source, _ = MODULES[module]
    meta = json.loads((ROOT / "mutants" / (source + ".meta")).read_text())
    exit_codes: dict[str, int | None] = meta["exit_code_by_key"]
    if rerun is not None:
        exit_codes = {k: v for k, v in exit_codes.items() if k in rerun}
    elif module in SAMPLES:
        patterns = SAMPLES[module]
        exit_codes = {
            k: v for k, v in exit_codes.items() if any(fnmatch.fnmatch(k, p) for p in patterns)
        }
    status = {name: status_by_exit_code[code] for name, code in sorted(exit_codes.items())}
    survivors = []
    for name, st in status.items():
        if st not in ("survived", "timeout", "no tests", "suspicious"):
            continue
        diff = get_diff_for_mutant(name, path=source)
        survivors.append({"name": name, "status": st, "change": one_line(diff)})
    counts = Counter(status.values())
    if rerun is not None and before is not None:
        kept = [e for e in before["survivors"] if e["name"] not in rerun]
        survivors = sorted([*survivors, *kept], key=lambda e: e["name"])
        counts = Counter({k: v for k, v in before.items() if k in _COUNTED})
        for e in before["survivors"]:
            if e["name"] in rerun:
                counts[e["status"].replace(" ", "_")] -= 1
        for st in status.values():
            counts[st.replace(" ", "_")] += 1
    counts = Counter({k.replace(" ", "_"): v for k, v in counts.items()})
    out: dict[str, Any] = {"mutants": len(meta["exit_code_by_key"])}
    if module in SAMPLES and rerun is None:
        out["sample"] = {"patterns": list(SAMPLES[module]), "mutants": len(exit_codes)}
    for key in ("killed", "survived", "timeout"):
        out[key] = counts.pop(key, 0)
    out.update({k: v for k, v in sorted(counts.items()) if v})
    out["survivors"] = survivors
    return out


_COUNTED = ("killed", "survived", "timeout", "no_tests", "suspicious", "not_checked", "segfault")


def relabel(results: dict[str, Any]) -> None:
    """Apply the current :data:`EQUIVALENT` / :data:`NOT_KILLED` labels to every stored phase."""
    for module in results.get("modules", {}).values():
        for key in ("before", "after"):
            phase = module.get(key)
            if phase is None:
                continue
            for entry in phase["survivors"]:
                entry.pop("equivalent", None)
                entry.pop("not_killed", None)
                if entry["name"] in EQUIVALENT:
                    entry["equivalent"] = EQUIVALENT[entry["name"]]
                elif (reason := not_killed_reason(entry["name"], entry["change"])) is not None:
                    entry["not_killed"] = reason
            alive = [e for e in phase["survivors"] if e["status"] == "survived"]
            phase["survived_equivalent"] = sum(1 for e in alive if "equivalent" in e)
            phase["survived_not_killed_on_purpose"] = sum(1 for e in alive if "not_killed" in e)
            phase["survived_not_equivalent"] = sum(1 for e in alive if "equivalent" not in e)


def coverage(results: dict[str, Any]) -> dict[str, Any]:
    """Which modules have full 'before' and 'after' runs, which are partial, which not run.

    Derived from the stored phases, so it cannot go stale: a phase is partial when some of its
    mutants were not checked (a run stopped early); ``sampled`` names the phases run on a
    sample (:data:`SAMPLES`).
    """
    modules = results.get("modules", {})
    full: list[str] = []
    partial: dict[str, str] = {}
    not_run: list[str] = []
    sampled: dict[str, dict[str, str]] = {}
    for name in MODULES:
        phases = {k: modules.get(name, {}).get(k) for k in ("before", "after")}
        if all(ph is None for ph in phases.values()):
            not_run.append(name)
            continue
        problems = [
            f"{key}: {ph.get('not_checked', 0)} of {ph['mutants']} mutants not checked"
            if ph is not None
            else f"no {key} run"
            for key, ph in phases.items()
            if ph is None or ph.get("not_checked", 0)
        ]
        if problems:
            partial[name] = "; ".join(problems)
        else:
            full.append(name)
        for key, ph in phases.items():
            if ph is not None and "sample" in ph:
                sampled.setdefault(name, {})[key] = (
                    f"{ph['sample']['mutants']} of {ph['mutants']} mutants "
                    f"({', '.join(ph['sample']['patterns'])})"
                )
    return {
        "full_before_and_after": full,
        "sampled": sampled,
        "partial": partial,
        "not_run": not_run,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("before", "after"), default="after")
    parser.add_argument("--modules", nargs="+", choices=sorted(MODULES), default=list(MODULES))
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mutation.json")
    parser.add_argument(
        "--only-survivors",
        action="store_true",
        help="rerun only the mutants that survived the module's 'before' run (tests were only "
        "added since, so the mutants killed then stay killed)",
    )
    parser.add_argument(
        "--survivors-matching",
        metavar="REGEX",
        help="with --only-survivors: rerun only the survivors whose name matches (the others "
        "keep their 'before' status)",
    )
    parser.add_argument(
        "--relabel",
        action="store_true",
        help="only apply the current EQUIVALENT / NOT_KILLED labels to the stored results",
    )
    parser.add_argument("--mutmut-child", help=argparse.SUPPRESS)
    parser.add_argument("--mutmut-names", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.mutmut_child:
        run_mutmut_in_process(args.mutmut_child, args.max_children, args.mutmut_names)
        return 0

    import mutmut

    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.relabel:
        relabel(results)
        results["coverage"] = coverage(results)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"relabelled {args.out}")
        return 0
    results["tool"] = f"mutmut {mutmut.__version__}"
    results["python"] = platform.python_version()
    results["how"] = (
        "one module at a time: rm -rf mutants; mutmut run --max-children N with [tool.mutmut] "
        "narrowed to the module (only_mutate) and its own tests; counts from mutants/<path>.meta"
    )
    modules = results.setdefault("modules", {})
    for module in args.modules:
        source, tests = MODULES[module]
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--mutmut-child", module]
        cmd += ["--max-children", str(args.max_children)]
        rerun: set[str] | None = None
        if args.only_survivors:
            before = modules.get(module, {}).get("before")
            if before is None:
                print(f"{module}: no 'before' run to take survivors from", file=sys.stderr)
                return 2
            rerun = {
                s["name"]
                for s in before["survivors"]
                if s["status"] != "not checked"
                and (not args.survivors_matching or re.search(args.survivors_matching, s["name"]))
            }
            cmd += ["--mutmut-names", *sorted(rerun)]
        print(f"== {module}: {source} against {' '.join(tests)}", flush=True)
        start = time.perf_counter()
        # mutmut's spinner floods a log; keep its output and show it only when it fails
        # mutmut forks a process per mutant: OpenMP thread pools started before the fork (torch)
        # deadlock in the forked test run, so the networks run on one thread
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-6000:], proc.stderr[-6000:], sep="\n", file=sys.stderr)
            print(f"mutmut failed on {module} (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode
        entry = modules.setdefault(module, {})
        entry["source"] = source
        entry["tests"] = list(tests)
        phase = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": f"python benchmarks/mutation.py --phase {args.phase} --modules {module} "
            f"--max-children {args.max_children}"
            + (" --only-survivors" if rerun is not None else "")
            + f"  (= mutmut run --max-children {args.max_children}"
            + (f" <the {len(rerun)} 'before' survivors>" if rerun is not None else "")
            + f", only_mutate={source}, tests {' '.join(tests)})",
            "seconds": round(seconds, 1),
        }
        phase.update(collect(module, rerun, modules.get(module, {}).get("before")))
        if rerun is not None:
            phase["rerun"] = len(rerun)
        entry[args.phase] = phase
        relabel(results)
        print(
            f"   {phase['mutants']} mutants: {phase['killed']} killed, {phase['survived']} "
            f"survived ({phase['survived_equivalent']} equivalent), {phase['timeout']} timeout, "
            f"{seconds:.0f} s",
            flush=True,
        )
        results["mutmut_seconds_total"] = round(
            sum(
                ph["seconds"]
                for m in modules.values()
                for key, ph in m.items()
                if key in ("before", "after")
            ),
            1,
        )
        relabel(results)
        results["coverage"] = coverage(results)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
