"""Exceptions raised by facekit.

Every error that concerns a file names that file and the reason, so a user can
act on the message without reading a traceback.
"""
from __future__ import annotations

from os import PathLike


class FacekitError(Exception):
    """Base class of all facekit errors."""


class FileError(FacekitError):
    """A problem with one file: carries the path and a short reason."""

    def __init__(self, path: str | PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:   # picklable: errors cross worker processes
        return type(self), (self.path, self.reason)


class ImageReadError(FileError):
    """The file could not be decoded as an image (missing, corrupt, not an image)."""


class NoFaceError(FileError):
    """No face was found in the image."""


class LabelFileError(FileError):
    """A label or metadata file is missing or malformed."""


class LayoutError(FileError):
    """A folder does not have the layout the named dataset adapter expects."""


class UnknownDatasetError(FacekitError, KeyError):
    """No dataset adapter is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelNotFoundError(FacekitError):
    """The Face Landmarker model file is absent and could not be downloaded."""


class ChecksumError(FileError):
    """A downloaded or supplied file does not match its pinned sha256."""


class NotAFacekitFileError(FileError):
    """An HDF5 file that facekit did not write (or that is incomplete)."""


class OutputExistsError(FileError):
    """The output exists and --force/--resume was not given."""


class InvalidModelError(FileError):
    """A model file exists but is not what it should be (e.g. not a MediaPipe ``.task`` archive)."""


class DamagedPartError(NotAFacekitFileError):
    """A part file behind a facekit file is truncated, corrupt or changed (names the part)."""


class OutputLockedError(FileError):
    """Another run holds the lock on this output (``OUT.lock``): its pid, host and start time."""


class WorkerDiedError(FileError):
    """A worker process died (e.g. killed by the out-of-memory killer) while writing a part;
    ``path`` is that part. Finished parts are kept for ``--resume``."""


def picklable_exception(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to be sent from a worker process to its parent), else a
    :class:`RuntimeError` that carries its type name and message."""
    import pickle
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
