"""Imported once by the fork server that starts facekit's worker processes once MediaPipe
runs in the calling process (see :mod:`facekit._workers`): the worker code of
``prepare`` and ``analyze`` and MediaPipe (about 0.6 s) are then loaded before any
worker is forked from it, instead of once per worker. Private."""
from .analysis import _worker as _analysis_worker  # noqa: F401
from .detect.landmarker import preload
from .prepare import _pool as _prepare_pool  # noqa: F401
from .prepare import _worker as _prepare_worker  # noqa: F401

preload()
