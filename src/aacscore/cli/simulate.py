"""``aacscore simulate``: synthetic lateral lumbar radiographs with exact Kauppila truth."""

from __future__ import annotations

from pathlib import Path

import typer

from aacscore.cli._app import app, console, err_console


@app.command("simulate")
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    n: int = typer.Option(12, "-n", "--n", min=0, help="Number of cases (gallery: tiles)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Dataset seed."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes."),
    distribution: str = typer.Option(
        "population",
        "--distribution",
        help="Target AAC-24 distribution: population|balanced|mild|negative (hard negatives: "
        "AAC-24 0, no plaque, distractors over the aortic band).",
    ),
    fmt: str = typer.Option("dicom", "--format", help="Image format: dicom|png|both."),
    spacing: float | None = typer.Option(
        None, "--spacing", help="Fixed pixel spacing in mm (default: random 0.10-0.35)."
    ),
    gallery: bool = typer.Option(False, "--gallery", help="Write gallery.png instead."),
    family: str = typer.Option(
        "a", "--family", help="Rendering family: a (training simulator) | b (independent)."
    ),
    variety: str = typer.Option(
        "standard",
        "--variety",
        help="Family a anatomy: standard | extended (flexion/extension, spondylolisthesis, "
        "transitional vertebrae, DISH, scoliosis, implants) | implants (extended, with an IVC "
        "filter and an aortic stent graft on half the films each).",
    ),
) -> None:
    """Simulate N cases (image, labels, calcification mask, JSON, truth.csv) into OUT."""
    from aacscore.simulate import simulate_dataset, write_gallery
    from aacscore.simulate.anatomy import VARIETIES
    from aacscore.simulate.calcification import DISTRIBUTIONS
    from aacscore.simulate.dataset import FAMILIES

    if distribution not in DISTRIBUTIONS:
        err_console.print(f"[red]error:[/red] unknown distribution {distribution!r}")
        raise typer.Exit(2)
    if fmt not in ("dicom", "png", "both"):
        err_console.print(f"[red]error:[/red] unknown format {fmt!r}")
        raise typer.Exit(2)
    if family not in FAMILIES:
        err_console.print(f"[red]error:[/red] unknown family {family!r} (expected a or b)")
        raise typer.Exit(2)
    if variety not in VARIETIES:
        err_console.print(
            f"[red]error:[/red] unknown variety {variety!r} (expected {', '.join(VARIETIES)})"
        )
        raise typer.Exit(2)
    if variety != "standard" and (family != "a" or gallery):
        err_console.print("[red]error:[/red] --variety applies to family a datasets only")
        raise typer.Exit(2)
    if gallery and family != "a":
        err_console.print("[red]error:[/red] --gallery renders family a only")
        raise typer.Exit(2)
    if gallery:
        path = write_gallery(
            out, seed=seed, n=max(n, 1), distribution=distribution, spacing_mm=spacing or 0.3
        )
        console.print(f"wrote {path}")
        return
    summary = simulate_dataset(
        out,
        n,
        seed,
        jobs=jobs,
        distribution=distribution,
        fmt=fmt,
        progress=True,
        spacing_mm=spacing,
        family=family,
        variety=variety,
    )
    hist = summary.aac24
    zero = sum(1 for a in hist if a == 0)
    console.print(
        f"wrote {summary.n} cases to {summary.out_dir} in {summary.seconds:.1f} s "
        f"({summary.cases_per_second:.2f} cases/s); AAC-24 = 0 in {zero}; "
        f"truth: {summary.truth_csv}"
    )
