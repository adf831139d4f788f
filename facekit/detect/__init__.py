"""Face detection and landmarks (MediaPipe Face Landmarker)."""
from .ibug68 import IBUG68_FLIP, IBUG68_REGIONS, IRIS_CENTRES, MESH_TO_IBUG68, to_ibug68
from .landmarker import Face, Landmarker, detect_landmarks
from .weights import FACE_LANDMARKER, ModelWeights, cache_dir, resolve_model_path

__all__ = ["Face", "Landmarker", "detect_landmarks", "MESH_TO_IBUG68", "IBUG68_FLIP", "IBUG68_REGIONS",
           "IRIS_CENTRES", "to_ibug68", "FACE_LANDMARKER", "ModelWeights", "cache_dir", "resolve_model_path"]
