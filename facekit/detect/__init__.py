"""Face detection and landmarks (MediaPipe Face Landmarker)."""
from .ibug68 import IBUG68_FLIP, IBUG68_REGIONS, IRIS_CENTRES, MESH_TO_IBUG68, to_ibug68
from .face import BLENDSHAPE_NAMES, Face, HeadPose, pose_from_matrix, pose_matrix
from .landmarker import MODES, Landmarker, detect_landmarks
from .weights import FACE_LANDMARKER, ModelWeights, cache_dir, resolve_model_path

__all__ = ["Face", "HeadPose", "BLENDSHAPE_NAMES", "pose_from_matrix", "pose_matrix", "Landmarker", "MODES",
           "detect_landmarks", "MESH_TO_IBUG68", "IBUG68_FLIP", "IBUG68_REGIONS",
           "IRIS_CENTRES", "to_ibug68", "FACE_LANDMARKER", "ModelWeights", "cache_dir", "resolve_model_path"]
