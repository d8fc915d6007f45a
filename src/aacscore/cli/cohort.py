"""``aacscore cohort`` and ``aacscore simulate-cohort``: AAC and outcomes in a cohort."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from aacscore.cli._app import app, console, err_console
from aacscore.keys import KeyFrom


@app.command("cohort")
def cohort(
    table: Path = typer.Argument(..., help="Cohort CSV, one row per patient."),
    time: str = typer.Option(..., "--time", help="Follow-up time column."),
    event: str = typer.Option(..., "--event", help="Event column (0/1), e.g. MACE."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    aac: str = typer.Option("aac24", "--aac", help="AAC-24 total column."),
    key: str | None = typer.Option(
        None,
        "--key",
        help="Patient / image key column (with --results: default file, or the --key-from UID "
        "column).",
    ),
    results: Path | None = typer.Option(
        None, "--results", help="aacscore results.csv joined on --key (see --key-from)."
    ),
    key_from: KeyFrom = typer.Option(
        KeyFrom.NAME,
        "--key-from",
        case_sensitive=False,
        help="Join --results on: name (file name without folder and extension), relpath (path "
        "relative to --root), sop_uid, study_uid or accession (that column of --results; --key "
        "defaults to the column of the same name).",
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Folder the input paths are relative to (with --key-from relpath)."
    ),
    exposure: str | None = typer.Option(
        None, "--exposure", help="Binary exposure / matching group (e.g. dialysis)."
    ),
    match_on: str | None = typer.Option(
        None, "--match-on", help="Propensity-score covariates, comma-separated."
    ),
    exact_on: str | None = typer.Option(
        None, "--exact-on", help="Columns to match exactly, comma-separated."
    ),
    ratio: int = typer.Option(1, "--ratio", min=1, help="Controls per exposed patient (1:k)."),
    caliper: float = typer.Option(
        0.2, "--caliper", min=0.0, help="Caliper in SD of the logit propensity score (0: none)."
    ),
    adjust: str | None = typer.Option(
        None, "--adjust", help="Covariates of the adjusted Cox models, comma-separated."
    ),
    groups: str = typer.Option("lewis", "--groups", help="Severity groups: lewis, ckd or a,b."),
    competing: str | None = typer.Option(
        None, "--competing", help="Competing event column (0/1), e.g. non-CV death."
    ),
    time_unit: str = typer.Option(
        "years", "--time-unit", help="Unit of --time: years, months, weeks or days."
    ),
    matched_model: str = typer.Option(
        "stratified",
        "--matched-model",
        help="Cox models in the matched set: stratified (by matched set) or robust "
        "(cluster-robust variance).",
    ),
    horizons: str | None = typer.Option(
        None, "--horizons", help="Times for survival / cumulative incidence, e.g. 1,3,5."
    ),
) -> None:
    """Kaplan-Meier, log-rank, event rates and Cox models of AAC and outcomes (optionally
    in a propensity-score-matched cohort); writes cohort.json, report.md/.html, matched.csv."""
    import matplotlib

    matplotlib.use("Agg")
    from aacscore.cohort.cox_models import is_key_term
    from aacscore.cohort.errors import CohortInputError
    from aacscore.cohort.options import CohortOptions, parse_horizons, parse_list
    from aacscore.cohort.run import run_cohort, write_outputs

    try:
        options = CohortOptions(
            time=time,
            event=event,
            aac=aac,
            key=key,
            results=results,
            exposure=exposure,
            match_on=parse_list(match_on),
            exact_on=parse_list(exact_on),
            ratio=ratio,
            caliper=caliper if caliper > 0 else None,
            adjust=parse_list(adjust),
            groups=groups,
            competing=competing,
            time_unit=time_unit,
            horizons=parse_horizons(horizons),
            matched_model=matched_model,
            key_from=key_from,
            root=root,
        )
        result = run_cohort(table, options)
        paths = write_outputs(result, out_dir)
    except (CohortInputError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from None
    s = result.summary
    console.print(
        f"{s['n']} patients, {s['events']} events"
        + (f"; matched set {s['matched_n']}" if s["matched"] else "")
    )
    for m in result.models:
        for t in m.terms:
            if is_key_term(m, t.term, options):
                console.print(
                    escape(f"  {m.name}: {t.term} HR {t.hr:.2f} ({t.ci_low:.2f}-{t.ci_high:.2f})")
                )
    for k in s["cox_skipped"]:
        err_console.print(escape(f"skipped Cox model {k['name']!r}: {k['reason']}"))
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    for p in paths.values():
        console.print(escape(f"wrote {p}"))


@app.command("simulate-cohort")
def simulate_cohort(
    n: int = typer.Option(200, "-n", "--n", min=2, help="Number of patients."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV (truth beside it)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Write a synthetic dialysis cohort with known hazard ratios (+ <name>.truth.json)."""
    from aacscore.cohort.simulate import write_simulated_cohort

    csv_path, truth_path = write_simulated_cohort(out, n=n, seed=seed)
    console.print(escape(f"wrote {csv_path}"))
    console.print(escape(f"wrote {truth_path}"))
