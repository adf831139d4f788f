"""Cross-validation folds for facekit files (``facekit folds``).

On a file written by ``facekit prepare``::

    from facekit.split import create_folds, make_folds, read_folds
    a = make_folds("out.h5", k=10, seed=0)      # compute only
    a.fold.shape, a.subjects_per_fold[0][:3]
    create_folds("out.h5", k=10, seed=0, export="folds.csv")   # compute, store, export
"""
from .folds import (METHOD_LOSO, METHOD_SGKF, FoldAssignment, FoldsError, create_folds, export_folds_csv,
                    make_folds, read_folds, stratified_subject_folds, write_folds)

__all__ = ["FoldAssignment", "FoldsError", "make_folds", "write_folds", "read_folds", "create_folds",
           "export_folds_csv", "stratified_subject_folds", "METHOD_SGKF", "METHOD_LOSO"]
