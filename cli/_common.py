"""Helpers shared by the facekit commands: error reporting and exit codes."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from facekit.errors import FacekitError, NotAFacekitFileError, OutputExistsError

#: exit codes: 1 nothing usable / failed, 2 bad input (usage, layout, existing output), 130 interrupted
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def reported_errors(failed: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn library errors into one ``error: ...`` line and an exit code (no traceback)."""
    try:
        yield
    except failed as exc:
        fail(str(exc), EXIT_FAILED)
    except (FacekitError, ValueError, OutputExistsError, NotAFacekitFileError) as exc:
        fail(str(exc), EXIT_BAD_INPUT)
