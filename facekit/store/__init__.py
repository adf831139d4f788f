"""HDF5 storage: part files written by workers, assembled into one entry file."""
from .._fs import atomic_output
from .assemble import assemble, read_part_contents
from .parts import FaceRecord, PartWriter, StorageOptions, read_part_meta
from .reader import FacekitFile, check_facekit_file, open_facekit, verify_parts
from ._lock import lock_output
from . import schema

__all__ = ["atomic_output", "assemble", "FaceRecord", "PartWriter", "StorageOptions",
           "read_part_meta", "read_part_contents", "FacekitFile", "open_facekit", "check_facekit_file", "schema",
           "verify_parts", "lock_output"]
