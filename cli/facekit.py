"""``facekit`` command group. Each command lives in its own ``cli/_<name>.py``."""
from __future__ import annotations

import click

from facekit._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="facekit")
def main() -> None:
    """Face alignment and dataset preparation for facial expression recognition."""


def _register() -> None:
    from . import _analyze, _folds, _info, _prepare, _preview  # noqa: F401  (imports register commands)


_register()
