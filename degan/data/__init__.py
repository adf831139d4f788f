"""Torch data access to facekit files, in pieces: what a file holds (:mod:`.fileinfo`), which
samples train and test a fold (:mod:`.split`), the Dataset (:mod:`.dataset`) with its in-memory
cache (:mod:`.cache`), and the batch transform with its augmentation (:mod:`.transform`)."""
from .cache import available_memory, cache_share, check_cache_fits, clear_cache, set_cache_jobs
from .dataset import Batch, FacekitDataset, collate, read_rows
from .fileinfo import FileInfo, read_file_info
from .split import PAPER_VIEWS, FoldSplit, all_labelled_split, make_split, training_views
from .transform import BatchTransform, View, make_transform, paper_views, scoring_views

__all__ = ["FileInfo", "read_file_info", "FoldSplit", "make_split", "all_labelled_split", "training_views",
           "PAPER_VIEWS", "FacekitDataset",
           "Batch", "collate", "read_rows", "BatchTransform", "View", "make_transform", "paper_views", "scoring_views",
           "available_memory", "cache_share", "check_cache_fits", "clear_cache", "set_cache_jobs"]
