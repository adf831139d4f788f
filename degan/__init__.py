"""degan: DE-GAN (Ali & Hughes, "Facial expression representation learning by synthesizing
expression images") and its CNN baseline, trained on facekit HDF5 files.

Entry points: ``degan-train``, ``degan-eval``, ``degan-synthesize`` (see ``cli/degan.py``);
in Python :func:`degan.train.run_cv`, :func:`degan.evaluate.evaluate_run` and
:func:`degan.synthesize.synthesize_file`. degan imports facekit, never the reverse.
"""
from __future__ import annotations

from .config import DeganConfig, get_preset, list_presets, register_preset

__all__ = ["DeganConfig", "get_preset", "list_presets", "register_preset"]
