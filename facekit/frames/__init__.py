"""Frame selection: which frames of a sequence become training faces."""
from .select import FrameSpec, parse_frame_spec, select_frames

__all__ = ["FrameSpec", "parse_frame_spec", "select_frames"]
