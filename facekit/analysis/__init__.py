"""Per-frame analysis: landmarks, head pose and blendshapes of any images and videos, as a table.

::

    import facekit
    df = facekit.analyze(["clips/", "photo.jpg"], "faces.csv")
    df[["input", "frame", "timestamp", "success", "yaw", "jawOpen"]]

``facekit analyze INPUT... -o faces.csv`` is the command line over
:func:`analyze`. Columns: :mod:`facekit.analysis.table`; the run (units, parts,
resume): :mod:`facekit.analysis.run`; reference: ``docs/analyze.md``. pandas is
imported when a table is built, not with this package.
"""
from .run import (AnalysisFailedError, AnalyzeConfig, AnalyzeSummary, NothingToAnalyseError, analyze,
                  parts_dir_for, run_analysis)
from .table import columns, read_table, write_table

__all__ = ["analyze", "run_analysis", "AnalyzeConfig", "AnalyzeSummary", "AnalysisFailedError",
           "NothingToAnalyseError", "parts_dir_for", "columns", "read_table", "write_table"]
