"""``aacscore validate``: agreement of predictions with a reference reading."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from aacscore.cli._app import app, console, err_console
from aacscore.keys import KeyFrom


@app.command("validate")
def validate_cmd(
    pred: Path = typer.Option(..., "--pred", help="Prediction CSV (aacscore results.csv)."),
    ref: Path = typer.Option(..., "--ref", help="Reference CSV (aac24, segment grades, readers)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory."),
    groups: str = typer.Option(
        "lewis", "--groups", help="Severity groups: lewis, ckd or cut-offs such as 0,4,15."
    ),
    key_from: KeyFrom = typer.Option(
        KeyFrom.NAME,
        "--key-from",
        case_sensitive=False,
        help="Join on: name (file name without folder and extension), relpath (path relative "
        "to --root), sop_uid, study_uid or accession (that column of --pred).",
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Folder the input paths are relative to (with --key-from relpath)."
    ),
    key: str | None = typer.Option(
        None, "--key", help="Key column in both files (default: file, or the --key-from column)."
    ),
    pred_key: str | None = typer.Option(None, "--pred-key", help="Key column of --pred."),
    ref_key: str | None = typer.Option(None, "--ref-key", help="Key column of --ref."),
    reader_columns: list[str] | None = typer.Option(
        None,
        "--reader-columns",
        help="Reader total columns of --ref (comma-separated or repeated); "
        "default: columns named aac24_reader*.",
    ),
    n_resamples: int = typer.Option(
        2000, "--n-resamples", min=0, help="Bootstrap resamples (0: no bootstrap CIs)."
    ),
    ci_method: str = typer.Option("bca", "--ci-method", help="Bootstrap CI: bca or percentile."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    loa_ci: str = typer.Option(
        "bland-altman-1999",
        "--loa-ci",
        help="CI of the limits of agreement: bland-altman-1999, exact or bland-altman-1986.",
    ),
) -> None:
    """Compare predicted AAC-24 scores with a reference: metrics.json, report.md, report.html."""
    from aacscore.stats.validate import ValidationInputError, ValidationSettings, validate

    readers = [c for item in reader_columns or [] for c in item.split(",") if c.strip()]
    try:
        settings = ValidationSettings(
            groups=groups,
            n_resamples=n_resamples,
            ci_method=ci_method.lower(),
            seed=seed,
            loa_ci_method=loa_ci.lower(),
        )
        result = validate(
            pred,
            ref,
            out,
            settings,
            key,
            pred_key,
            ref_key,
            readers or None,
            key_from=key_from,
            root=root,
        )
    except ValidationInputError as e:
        err_console.print(Text("error: ", style="bold red") + Text(str(e)), soft_wrap=True)
        raise typer.Exit(code=2) from None
    # Warnings (unmatched and failed rows, ...) are logged by the library and are in metrics.json.
    c = result.continuous
    i21 = result.icc["ICC(2,1)"]
    console.print(
        f"n = {result.n}  MAE {c.mae.estimate:.2f}  rho {c.spearman.value:.3f}  "
        f"ICC(2,1) {i21.value:.3f}  CCC {c.ccc.value:.3f}  "
        f"kappa(linear) {result.categorical.kappa_linear.value:.3f}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"wrote {out / 'metrics.json'}, {out / 'report.md'}, {out / 'report.html'}",
        highlight=False,
        soft_wrap=True,
    )
