"""``facekit info``: what a facekit file holds."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import reported_errors
from .facekit import main


@main.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (documented in facekit.inspect.info; stable keys).")
@click.option("-v", "--verbose", is_flag=True, help="Per-subject table and every rejected path.")
def info_cmd(file: Path, as_json: bool, verbose: bool) -> None:
    """Show the dataset, counts per class, subject and fold, image shape, the
    preparation config and what was rejected, for a facekit FILE."""
    from facekit.inspect import file_info, format_info

    with reported_errors():
        info = file_info(file, verbose=verbose)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        click.echo(format_info(info, verbose=verbose))
