"""Helpers shared by the facekit commands: error reporting, exit codes and the options
every command spells the same way.

Conventions (all commands): one ``error: PATH: reason`` line on stderr and exit
status 2 for a refusal or bad input, 1 for a failure (nothing usable, a worker
died, a disk error), 130 on Ctrl-C; ``-o/--out`` names the file a command
writes; ``-q/--quiet`` turns progress off; ``--json`` prints the summary as
JSON; ``--landmarker PATH`` is the MediaPipe model file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from facekit.errors import FacekitError, NotAFacekitFileError, OutputExistsError

#: exit codes: 1 nothing usable / failed, 2 bad input (usage, layout, existing output), 130 interrupted
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130

F = TypeVar("F", bound=Callable[..., Any])

#: OS errors that mean "this path cannot be used as given" (a refusal, exit 2); others are failures
_BAD_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                    errno.EEXIST, errno.ELOOP, errno.ENAMETOOLONG}


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for an OS error (the path it names, if any)."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {reason}"
    return reason


@contextlib.contextmanager
def reported_errors(failed: tuple[type[BaseException], ...] = (), *,
                    interrupted: str | Callable[[], str] | None = None) -> Iterator[None]:
    """Turn library errors into one ``error: ...`` line and an exit code (no traceback).

    ``failed`` exceptions exit 1; facekit errors, ``ValueError`` and OS errors about a
    path (permission, missing, read-only) exit 2; other OS errors (disk full, I/O) exit 1;
    Ctrl-C exits 130 with ``interrupted`` (default ``"interrupted"``; a callable is asked
    for the line when Ctrl-C comes, so it can name what the command had reached).
    """
    try:
        yield
    except KeyboardInterrupt:
        line = interrupted() if callable(interrupted) else interrupted
        fail(line or "interrupted", EXIT_INTERRUPTED)
    except failed as exc:
        fail(str(exc), EXIT_FAILED)
    except (FacekitError, ValueError, OutputExistsError, NotAFacekitFileError) as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except OSError as exc:
        fail(os_error_line(exc), EXIT_BAD_INPUT if exc.errno in _BAD_PATH_ERRNOS else EXIT_FAILED)


def quiet_option(f: F) -> F:
    """``-q/--quiet``: no progress bar."""
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(f)


def json_option(f: F) -> F:
    """``--json``: the summary as one JSON object."""
    return click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(f)


def out_option(metavar: str, help: str, *aliases: str, required: bool = False) -> Callable[[F], F]:
    """``-o/--out PATH`` (plus older spellings in ``aliases``, kept working)."""
    return click.option("-o", "--out", *aliases, "out", type=click.Path(dir_okay=False, path_type=str),
                        required=required, metavar=metavar, help=help)


def landmarker_option(f: F) -> F:
    """``--landmarker PATH`` (the MediaPipe ``face_landmarker.task``)."""
    return click.option("--landmarker", "landmarker", type=click.Path(dir_okay=False, path_type=str),
                        metavar="PATH", help="face_landmarker.task [default: $FACEKIT_MODEL, then the cache, "
                                             "then download].")(f)
