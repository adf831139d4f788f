"""Imported once by the process that starts the analysis workers (the forkserver): the
worker code and MediaPipe (about 0.6 s) are then loaded before any worker is forked
from it, instead of once per worker. Private."""
from ..detect.landmarker import preload
from . import _worker  # noqa: F401

preload()
