"""Exceptions raised by degan; each names the file or step it concerns."""
from __future__ import annotations

from facekit.errors import FacekitError, FileError, NotAFacekitFileError

__all__ = ["DeganError", "NoFoldsError", "FoldError", "CacheMemoryError", "CheckpointError", "NonFiniteLossError",
           "RunDirError", "WorkerDiedError", "DeviceError", "NotAFacekitFileError", "DataNotCheckedWarning"]


class DeganError(FacekitError):
    """Base class of degan errors."""


class NoFoldsError(FileError, DeganError):
    """The facekit file has no /folds (run ``facekit folds``)."""


class FoldError(FileError, DeganError):
    """A fold index out of range, or a fold without training or test data."""


class CacheMemoryError(FileError, DeganError):
    """The in-memory cache was requested but the images do not fit."""


class CheckpointError(FileError, DeganError):
    """A checkpoint that cannot be read, or that belongs to another run."""


class RunDirError(FileError, DeganError):
    """A run directory that exists without --resume, or lacks what a command needs."""


class DeviceError(FileError, DeganError):
    """A device that this machine does not have (``path`` names the option, e.g. ``--device cuda``)."""


class NonFiniteLossError(DeganError):
    """A loss became NaN or infinite; training stopped, the last good checkpoint is kept."""

    def __init__(self, stage: str, epoch: int, step: int, losses: dict[str, float], checkpoint: str | None) -> None:
        self.stage, self.epoch, self.step, self.losses, self.checkpoint = stage, epoch, step, losses, checkpoint
        bad = ", ".join(f"{k}={v}" for k, v in losses.items())
        kept = f"; last good checkpoint kept at {checkpoint}" if checkpoint else "; no checkpoint was written yet"
        super().__init__(f"non-finite loss in {stage} at epoch {epoch + 1}, step {step + 1} ({bad}){kept}")

    def __reduce__(self) -> tuple[type, tuple[str, int, int, dict[str, float], str | None]]:   # crosses --jobs workers
        return type(self), (self.stage, self.epoch, self.step, self.losses, self.checkpoint)


class WorkerDiedError(DeganError):
    """A ``--jobs`` worker process ended without reporting its fold (killed, out of memory, crashed)."""


class DataNotCheckedWarning(UserWarning):
    """A run or checkpoint written before data fingerprints were recorded: the data it is used
    with cannot be checked against the data it was trained on (accepted, with this warning)."""
