"""``facekit folds``: subject-disjoint, expression-stratified cross-validation folds."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import json_option, reported_errors
from .facekit import main


@main.command("folds")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--k", "k", type=int, default=10, show_default=True,
              help="Number of folds; the number of subjects gives leave-one-subject-out.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same folds).")
@click.option("--export", type=click.Path(dir_okay=False, path_type=Path), metavar="CSV",
              help="Also write subject,fold,samples to this CSV file.")
@click.option("--force", is_flag=True, help="Replace folds the file already has.")
@json_option
def folds_cmd(file: Path, k: int, seed: int, export: Path | None, force: bool, as_json: bool) -> None:
    """Split FILE into K folds, no subject in two folds, stored in FILE.

    Every sample of a subject (all frames, all augmented copies) lands in one
    fold; class shares are kept close to the whole file's (scikit-learn's
    StratifiedGroupKFold over samples). The folds go to /folds/fold in FILE,
    written to a copy that replaces FILE only when complete (FILE.lock keeps a
    prepare run off FILE meanwhile).
    """
    from facekit.split import create_folds

    with reported_errors():
        assignment = create_folds(file, k=k, seed=seed, force=force, export=export)
    if as_json:
        click.echo(json.dumps({**assignment.to_dict(), "export": None if export is None else str(export)},
                              indent=2, ensure_ascii=False))
        return
    click.echo(assignment.format_table())
    click.echo(f"wrote /folds to {file}" + (f" and subject -> fold to {export}" if export else ""))
