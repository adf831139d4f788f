"""Model files with pinned download address and checksum (torchvision style).

Resolution order for the Face Landmarker model (:func:`resolve_model_path`):

1. an explicit path (``Landmarker(model_path=...)``, ``--landmarker PATH`` of the commands);
2. the ``FACEKIT_MODEL`` environment variable;
3. the user cache, ``$FACEKIT_CACHE`` or ``$XDG_CACHE_HOME/facekit`` or
   ``~/.cache/facekit``, under ``models/<file name>``;
4. a download from the official address into that cache, checked against the
   pinned sha256 and written atomically.

Offline with no file: :class:`~facekit.errors.ModelNotFoundError` says exactly
where to put it. A file given by path (1, 2) is checked before MediaPipe sees it
(:func:`check_model_file`): a MediaPipe ``.task`` model is a zip archive of
TFLite models, so anything else (random bytes, an HTML error page saved as
``.task``, a truncated download) is refused with
:class:`~facekit.errors.InvalidModelError` naming the file, instead of a
MediaPipe traceback. Other versions of the model (another sha256) are accepted.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .._fs import atomic_output
from ..errors import ChecksumError, FileError, InvalidModelError, ModelNotFoundError

__all__ = ["ModelWeights", "FACE_LANDMARKER", "resolve_model_path", "cache_dir", "sha256_file",
           "check_model_file"]

ENV_MODEL = "FACEKIT_MODEL"
ENV_CACHE = "FACEKIT_CACHE"


@dataclass(frozen=True)
class ModelWeights:
    """A model file: where it comes from and what it must hash to."""

    name: str
    url: str
    sha256: str
    size: int
    license: str
    #: files a ``.task`` archive of this model must contain
    members: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


FACE_LANDMARKER = ModelWeights(
    name="face_landmarker float16 v1",
    url="https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    size=3_758_596,
    license="Apache-2.0",
    members=("face_detector.tflite", "face_landmarks_detector.tflite"),
)


def check_model_file(path: str | os.PathLike, weights: ModelWeights = FACE_LANDMARKER) -> Path:
    """``path`` if it looks like a MediaPipe ``.task`` model of ``weights``' kind: a
    readable zip archive holding ``weights.members``.

    Raises:
        InvalidModelError: names the file and what is wrong with it.
    """
    p = Path(path)
    expected = f"expected a MediaPipe .task model such as {weights.filename} ({weights.url})"
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
    except zipfile.BadZipFile:
        size = p.stat().st_size
        raise InvalidModelError(p, f"not a MediaPipe .task model (not a zip archive, {size} bytes); "
                                   f"{expected}") from None
    except OSError as exc:
        raise InvalidModelError(p, f"cannot be read ({exc.strerror or exc})") from None
    missing = [m for m in weights.members if m not in names]
    if missing:
        raise InvalidModelError(p, f"not a {weights.name} model: the archive has no {missing[0]}; {expected}")
    return p


def cache_dir() -> Path:
    """Folder where downloaded models are kept."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "facekit"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _download(weights: ModelWeights, dest: Path, timeout: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with atomic_output(dest) as tmp:
        with urllib.request.urlopen(weights.url, timeout=timeout) as r, open(tmp, "wb") as out:
            while block := r.read(1 << 20):
                h.update(block)
                out.write(block)
        if h.hexdigest() != weights.sha256:
            raise ChecksumError(weights.url, f"downloaded file has sha256 {h.hexdigest()}, expected {weights.sha256}")


def resolve_model_path(model_path: str | os.PathLike | None = None, *,
                       weights: ModelWeights = FACE_LANDMARKER, download: bool = True,
                       timeout: float = 30.0) -> Path:
    """Find (or fetch) the model file; see the module docstring for the order.

    Raises:
        ModelNotFoundError: an explicit/env path does not exist, or the file is
            not cached and cannot be downloaded.
        InvalidModelError: an explicit/env path is not a MediaPipe ``.task`` model.
        ChecksumError: a download does not match the pinned sha256.
    """
    for source, value in (("model path", model_path), (f"${ENV_MODEL}", os.environ.get(ENV_MODEL))):
        if value:
            p = Path(value).expanduser()
            if not p.is_file():
                raise ModelNotFoundError(f"{source} {p} does not exist (expected {weights.filename})")
            return check_model_file(p, weights)
    cached = cache_dir() / "models" / weights.filename
    if cached.is_file():
        if cached.stat().st_size == weights.size and sha256_file(cached) == weights.sha256:
            return cached
        cached.unlink()  # corrupt or partial: fetch again
    if download:
        try:
            _download(weights, cached, timeout)
            return cached
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = f"download failed ({exc})"
        except ChecksumError:
            raise
        except FileError as exc:             # the cache folder cannot be written
            reason = f"the download cannot be stored ({exc})"
    else:
        reason = "downloads disabled"
    raise ModelNotFoundError(
        f"{weights.name} not found and {reason}. Download {weights.url} "
        f"(sha256 {weights.sha256}) and put it at {cached}, or set ${ENV_MODEL} to its path, "
        f"or pass --landmarker PATH.")
