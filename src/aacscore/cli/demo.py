"""``aacscore demo``: simulate one film with known calcification and score it."""

from __future__ import annotations

from pathlib import Path

import typer

from aacscore.cli._app import app, console, err_console


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Output folder."),
    seed: int = typer.Option(2026, "--seed", help="Simulator seed of the demo case."),
    index: int = typer.Option(0, "--index", help="Case index within the seed."),
) -> None:
    """Simulate a lateral lumbar film (DICOM) with exact ground truth and score it."""
    from aacscore.batch import score_batch
    from aacscore.io import collect_inputs
    from aacscore.kauppila import SEGMENTS
    from aacscore.outputs.results_csv import read_results
    from aacscore.simulate import simulate_case
    from aacscore.simulate.dataset import write_case

    out.mkdir(parents=True, exist_ok=True)
    case = simulate_case(seed, index, distribution="balanced")
    row0 = write_case(case, out / "film", fmt="dicom")
    film = out / "film" / str(row0["file"])
    truth = case.truth
    console.print(f"simulated film: {film}")
    console.print(
        f"ground truth: AAC-24 {truth.aac24}, AAC-8 {truth.aac8}, group {truth.group}; "
        "grades " + " ".join(f"{s}={g}" for s, g in zip(SEGMENTS, truth.grades, strict=True))
    )
    try:
        summary = score_batch(collect_inputs([film]), out / "scored", overlay=True)
    except Exception as e:
        err_console.print(f"[red]scoring failed:[/red] {e}")
        raise typer.Exit(1) from None
    row = read_results(summary.results_csv)[-1]
    if row["status"] == "failed":
        err_console.print(f"[red]scoring failed:[/red] {row['error']}")
        raise typer.Exit(1)
    console.print(
        f"predicted:    AAC-24 {float(row['aac24']):.1f} ± {float(row['aac24_sd']):.1f}, "
        f"AAC-8 {row['aac8'] or 'n/a'}, group {row['group']}"
        + (" (low confidence)" if row["low_confidence"] == "True" else "")
    )
    console.print(
        "grades        " + " ".join(f"{s}={float(row[s]):.1f}" for s in SEGMENTS if row[s])
    )
    overlays = sorted((out / "scored" / "overlays").glob("*.png"))
    console.print(f"results: {summary.results_csv}")
    if overlays:
        console.print(f"overlay: {overlays[-1]}")
