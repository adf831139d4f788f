"""``facekit info``: what a facekit file holds."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import EXIT_BAD_INPUT, quiet_option, reported_errors
from .facekit import main


@main.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (documented in facekit.inspect.info; stable keys).")
@click.option("-v", "--verbose", is_flag=True, help="Per-subject table and every rejected path.")
@click.option("--check", is_flag=True, help="Also verify every part file completely: its size and CRC-32 "
              "against what FILE recorded, and every dataset read to the end.")
@quiet_option
def info_cmd(file: Path, as_json: bool, verbose: bool, check: bool, quiet: bool) -> None:
    """Show the dataset, counts per class, subject and fold, image shape, the
    preparation config and what was rejected, for a facekit FILE.

    Opening FILE checks that every part file is there and has the size FILE
    recorded; --check reads them all (one `error: PART: reason` line per
    damaged part, exit status 2)."""
    from facekit.inspect import check_parts, file_info, format_info

    with reported_errors():
        info = file_info(file, verbose=verbose)
        report = None
        if check:
            from tqdm import tqdm
            total = info["storage"]["parts_bytes"]
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"checking {file.name}",
                      disable=quiet, dynamic_ncols=True) as bar:
                report = check_parts(file, bar.update)
    if report is not None and report["problems"]:
        for p in report["problems"]:
            click.echo(f"error: {p['path']}: {p['problem']}", err=True)
        raise SystemExit(EXIT_BAD_INPUT)
    if as_json:
        if report is not None:
            info["check"] = report
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(format_info(info, verbose=verbose))
    if report is not None:
        click.echo(f"check       {report['parts']} part files, {report['bytes']} bytes read: CRC-32 and every "
                   "dataset intact")
