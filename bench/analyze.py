#!/usr/bin/env python
"""Benchmark `facekit analyze`: IMAGE vs VIDEO mode per frame, the cost of pose + blendshapes,
and analyze end to end against the landmarker floor and a naive script, in one run.

There is no real talking-face video on the benchmark machines (no internet). The video is
**synthetic**, generated reproducibly (seeded) from scikit-image's astronaut photo: 640x480,
30 fps, MPEG-4 part 2 (``mp4v``); the head moves (rotation up to about 4.5 degrees, shifts of
up to 14 px, 3 % zoom, smooth sums of sines), the mouth opens and closes at syllable rate with
pauses, the brows rise now and then, all by smooth local warps of the photo. A sequence of
**real frames** is measured too: JAFFE's 213 photographs (256x256 grey) ordered by subject,
i.e. about 21 frames of each of 10 women in a fixed frontal setup (the closest thing to a
recording on this machine; CK+48's 3-frame 48x48 sequences are too short and too small to say
anything about tracking).

Measurements (each round runs every one once, each in a fresh Python process; medians over
``--repeat`` rounds; rounds interleave them, so a drifting shared machine hits all alike):

* ``modes``: on the same decoded frames, ms per frame of the Face Landmarker in IMAGE mode
  and in VIDEO mode (``max_faces=1``, the setting that lets VIDEO mode track), each without
  and with pose + blendshapes; VIDEO mode with ``max_faces=4`` (the detector then runs on
  every frame); VIDEO mode on frames without a face (the face detector alone, once per frame:
  the share VIDEO mode can save at most, hence ``ceiling_if_detector_free``). The landmarks of the two modes are compared: mean
  distance of the 478 points as a fraction of the inter-ocular distance (outer eye corners).
* ``analyze_video_1`` / ``floor_video_1`` / ``naive_video_1``: ``facekit.analyze`` on the
  video file in one process; the floor, i.e. decoding plus the landmarker alone as analyze
  sets it up (VIDEO mode, pose + blendshapes) in one loop, nothing else; a one-process
  OpenCV + MediaPipe script as people write it (OpenFace-like: IMAGE mode per frame through
  MediaPipe's public API, Python loops over the points, a DataFrame at the end).
* ``analyze_videos_2`` / ``floor_videos_2``: two copies of the video, two worker processes
  (the floor's pool is started the way analyze starts its workers).
* ``analyze_images_{1,2}`` / ``floor_images_{1,2}`` / ``naive_images_1``: the same for the
  213 JAFFE stills (IMAGE mode, ``max_faces=4`` as analyze uses for images).

The machine's load (``/proc/loadavg``) and steal time are recorded: on a shared or busy
machine the numbers are disturbed; rerun on a quiet one. Usage::

    python bench/analyze.py [--repeat 3] [--frames 300] [--jaffe ../shared/datasets/jaffe/jaffe]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import loadavg, machine, steal_seconds

HERE = Path(__file__).resolve().parent
DEFAULT_JAFFE = HERE.parent.parent / "shared" / "datasets" / "jaffe" / "jaffe"
DEFAULT_MODEL = HERE.parent.parent / "shared" / "models" / "face_landmarker.task"
CACHE = HERE.parent / ".bench"

SIZE, FPS = (640, 480), 30.0
_CENTRE = (225.0, 124.0)  # face centre in the 512x512 photo
# (x, y) anchors in the photo, read from a MediaPipe run: lips, jaw, mouth corners, brows
_MOUTH_OPEN = ((223, 152, 0, 11, 9), (221, 176, 0, 9, 16), (223, 141, 0, -2, 6),
               (202, 139, 2, 1, 7), (245, 141, -2, 1, 7))
_SMILE = ((202, 139, -4, -4, 8), (245, 141, 4, -4, 8))
_BROWS = ((197, 87, 0, -5, 10), (254, 90, 0, -5, 10), (225, 90, 0, -3, 12))


# --- the synthetic talking-face video ---------------------------------------------------------
def _bumps(spec) -> np.ndarray:
    """``(2, 512, 512)`` float32 displacement of a group of Gaussian bumps at full strength."""
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)
    field = np.zeros((2, 512, 512), np.float32)
    for x, y, dx, dy, s in spec:
        w = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * s * s))
        field[0] += dx * w
        field[1] += dy * w
    return field


def talking_video(path: Path, n_frames: int, seed: int = 0) -> dict:
    """Write the synthetic talking-face clip to ``path`` (mp4v); returns its description."""
    import cv2
    import skimage.data
    rng = np.random.default_rng(seed)
    photo = cv2.GaussianBlur(skimage.data.astronaut().astype(np.float32), (0, 0), 0.8)
    mouth, smile, brows = _bumps(_MOUTH_OPEN), _bumps(_SMILE), _bumps(_BROWS)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 8)
    t = np.arange(n_frames) / FPS
    # speech: syllables at about 4 Hz, gated by a slow envelope (pauses), jittered in phase
    envelope = np.clip(0.6 + 0.5 * np.sin(2 * np.pi * 0.23 * t + phase[0]) + 0.3 * np.sin(2 * np.pi * 0.07 * t), 0, 1)
    syllable = 0.5 * (1 + np.sin(2 * np.pi * 4.1 * t + 1.5 * np.sin(2 * np.pi * 0.9 * t + phase[1])))
    opening = envelope * syllable ** 1.5
    smiling = np.clip(np.sin(2 * np.pi * 0.05 * t + phase[2]), 0, 1) ** 2
    raising = np.clip(np.sin(2 * np.pi * 0.31 * t + phase[3]), 0, 1) ** 4
    angle = 3.0 * np.sin(2 * np.pi * 0.25 * t + phase[4]) + 1.5 * np.sin(2 * np.pi * 0.61 * t + phase[5])
    dx = 10.0 * np.sin(2 * np.pi * 0.15 * t + phase[6]) + 4.0 * np.sin(2 * np.pi * 0.5 * t)
    dy = 5.0 * np.sin(2 * np.pi * 0.35 * t + phase[7])
    zoom = 1.0 + 0.03 * np.sin(2 * np.pi * 0.1 * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    base = 2.2                     # a webcam-like talking head: the face about 200 px wide
    try:
        for i in range(n_frames):
            field = float(opening[i]) * mouth + float(smiling[i]) * smile + float(raising[i]) * brows
            warped = cv2.remap(photo, xx - field[0], yy - field[1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT101)
            m = cv2.getRotationMatrix2D(_CENTRE, angle[i], base * zoom[i])
            m[:, 2] += (SIZE[0] / 2 - _CENTRE[0] + dx[i], SIZE[1] * 0.45 - _CENTRE[1] + dy[i])
            frame = cv2.warpAffine(warped, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            writer.write(np.clip(np.rint(frame[..., ::-1]), 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return {"synthetic": True, "source": "skimage.data.astronaut(), warped per frame (bench/analyze.py, seed "
            f"{seed})", "frames": n_frames, "fps": FPS, "size": list(SIZE), "codec": "mp4v",
            "motion": "rotation 3.0 sin(0.25 Hz) + 1.5 sin(0.61 Hz) deg, shift 10 sin(0.15 Hz) + 4 sin(0.5 Hz) / "
                      "5 sin(0.35 Hz) px, zoom 3 %; mouth opening at 4.1 Hz under a pause envelope, brow raises, "
                      "a slow smile",
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def decoded(path: Path) -> list[np.ndarray]:
    from facekit.media import iter_video_frames
    return [f.image for f in iter_video_frames(path, prefetch=0)]


def jaffe_files(folder: Path) -> list[str]:
    """JAFFE's photographs ordered by subject (the file names start with the subject's initials)."""
    from facekit.media import media_kind
    files = sorted((p for p in folder.iterdir() if p.is_file() and media_kind(p) == "image"),
                   key=lambda p: (p.name.split(".")[0], p.name))
    return [str(p) for p in files]


def jaffe_frames(folder: Path) -> list[np.ndarray]:
    from facekit.imageio import read_image, to_rgb
    return [to_rgb(read_image(p)) for p in jaffe_files(folder)]


# --- measurements (each in its own process) ---------------------------------------------------
def _pass(frames: list[np.ndarray], model: str, mode: str, max_faces: int, extras: bool
          ) -> tuple[float, list]:
    """ms per frame of one landmarker over ``frames`` (creation not timed) and the largest face per frame."""
    from facekit.detect import Landmarker
    with Landmarker(model, mode=mode, max_faces=max_faces, pose=extras, blendshapes=extras) as lm:
        faces = []
        t0 = time.perf_counter()
        if mode == "video":
            for i, f in enumerate(frames):
                found = lm.detect_all_for_video(f, int(round(1000 * i / FPS)))
                faces.append(found[0] if found else None)
        else:
            for f in frames:
                found = lm.detect_all(f)
                faces.append(found[0] if found else None)
        ms = 1000 * (time.perf_counter() - t0) / len(frames)
    return ms, faces


def _agreement(a: list, b: list) -> dict:
    """Mean 478-point distance between two runs' faces as a fraction of the inter-ocular distance."""
    d = []
    for fa, fb in zip(a, b):
        if fa is None or fb is None:
            continue
        lm68 = fa.landmarks68
        iod = float(np.linalg.norm(lm68[45] - lm68[36]))
        d.append(float(np.linalg.norm(fa.landmarks[:, :2] - fb.landmarks[:, :2], axis=1).mean()) / iod)
    arr = np.asarray(d)
    return {"frames_compared": len(d), "only_first": sum(x is not None and y is None for x, y in zip(a, b)),
            "only_second": sum(x is None and y is not None for x, y in zip(a, b)),
            "mean": round(float(arr.mean()), 4) if d else None, "median": round(float(np.median(arr)), 4) if d else None,
            "p95": round(float(np.percentile(arr, 95)), 4) if d else None, "max": round(float(arr.max()), 4) if d else None}


def measure_modes(frames: list[np.ndarray], model: str) -> dict:
    blank = [np.full_like(frames[0], 128)] * min(60, len(frames))
    ms_img, img = _pass(frames, model, "image", 1, False)
    ms_vid, vid = _pass(frames, model, "video", 1, False)
    ms_img_x, _ = _pass(frames, model, "image", 1, True)
    ms_vid_x, _ = _pass(frames, model, "video", 1, True)
    ms_vid4, _ = _pass(frames, model, "video", 4, False)
    ms_img4, _ = _pass(frames, model, "image", 4, False)
    # frames without a face in VIDEO mode: the face detector runs once per frame and nothing else
    # (IMAGE mode would retry a large frame once with a border)
    ms_blank, _ = _pass(blank, model, "video", 1, False)
    return {"image_ms": ms_img, "video_ms": ms_vid, "image_extras_ms": ms_img_x, "video_extras_ms": ms_vid_x,
            "video_max4_ms": ms_vid4, "image_max4_ms": ms_img4, "detector_only_ms": ms_blank,
            "faces_image": sum(f is not None for f in img), "faces_video": sum(f is not None for f in vid),
            "agreement": _agreement(img, vid)}


def _floor_chunk(args: tuple) -> int:
    """The landmarker alone, as analyze sets it up, over a video (decoded in this loop, no
    read-ahead thread) or a list of image files; nothing else."""
    items, model, mode = args
    import cv2
    from facekit.detect import Landmarker
    from facekit.imageio import read_image
    from facekit.media import iter_video_frames
    cv2.setNumThreads(1)
    n = 0
    with Landmarker(model, mode=mode, max_faces=1 if mode == "video" else 4, pose=True, blendshapes=True) as lm:
        if mode == "video":
            for f in iter_video_frames(items, prefetch=0):
                lm.detect_all_for_video(f.image, int(round(1000 * f.timestamp)))
                n += 1
        else:
            for path in items:
                lm.detect_all(read_image(path))
                n += 1
    return n


def floor(items: list, model: str, mode: str, workers: int) -> tuple[float, int]:
    """Seconds and frames of the landmarker floor: one process, or a pool started as analyze starts
    its workers (each worker a video, or a share of the images)."""
    t0 = time.perf_counter()
    if workers == 1:
        n = sum(_floor_chunk((item, model, mode)) for item in items) if mode == "video" \
            else _floor_chunk((items, model, mode))
    else:
        from facekit.analysis.run import pool_context
        jobs = [(item, model, mode) for item in items] if mode == "video" \
            else [(items[i::workers], model, mode) for i in range(workers)]
        with pool_context().Pool(workers) as pool:
            n = sum(pool.map(_floor_chunk, jobs, chunksize=1))
    return time.perf_counter() - t0, n


def _naive_row(row: dict, res, w: int, h: int) -> None:
    """The naive script's columns of one MediaPipe result, as a user's loop would fill them."""
    import cv2
    if res.face_landmarks:
        for j, p in enumerate(res.face_landmarks[0]):
            row[f"x_{j}"], row[f"y_{j}"] = p.x * w, p.y * h
        angles, *_ = cv2.RQDecomp3x3(np.asarray(res.facial_transformation_matrixes[0])[:3, :3])
        row["pitch"], row["yaw"], row["roll"] = angles
        for c in res.face_blendshapes[0]:
            row[c.category_name] = c.score


def naive_video(path: Path, model: str, out: Path) -> tuple[float, int]:
    """OpenFace-style script: read frames, IMAGE-mode detect through MediaPipe's public API, rows of
    Python values, one DataFrame at the end."""
    import cv2
    import mediapipe as mp_
    import pandas as pd
    from mediapipe.tasks.python import BaseOptions, vision
    t0 = time.perf_counter()
    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=model),
                                        running_mode=vision.RunningMode.IMAGE, num_faces=1,
                                        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    rows = []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        cap = cv2.VideoCapture(str(path))
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            res = lm.detect(mp_.Image(image_format=mp_.ImageFormat.SRGB, data=rgb))
            row = {"frame": i, "timestamp": cap.get(cv2.CAP_PROP_POS_MSEC) / 1000, "success": int(bool(res.face_landmarks))}
            _naive_row(row, res, w, h)
            rows.append(row)
            i += 1
        cap.release()
    pd.DataFrame(rows).to_csv(out, index=False)
    return time.perf_counter() - t0, i


def naive_images(files: list[str], model: str, out: Path) -> tuple[float, int]:
    import cv2
    import mediapipe as mp_
    import pandas as pd
    from mediapipe.tasks.python import BaseOptions, vision
    t0 = time.perf_counter()
    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=model),
                                        running_mode=vision.RunningMode.IMAGE, num_faces=1,
                                        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    rows = []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for path in files:
            rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            res = lm.detect(mp_.Image(image_format=mp_.ImageFormat.SRGB, data=rgb))
            row = {"input": path, "success": int(bool(res.face_landmarks))}
            _naive_row(row, res, w, h)
            rows.append(row)
    pd.DataFrame(rows).to_csv(out, index=False)
    return time.perf_counter() - t0, len(files)


def run_analyze(inputs: list, out: Path, model: str, workers: int) -> tuple[float, int]:
    import facekit
    t0 = time.perf_counter()
    df = facekit.analyze(inputs, out, workers=workers, landmarker=model, force=True)
    return time.perf_counter() - t0, int((df["frame"] >= 0).sum())


def one(name: str, args: argparse.Namespace, video: Path, tmp: Path) -> dict:
    """Run the measurement ``name`` in this process."""
    import facekit.analysis  # noqa: F401  (imports warm, as in prepare's benchmark)
    from facekit.detect.landmarker import preload
    preload()
    import pandas  # noqa: F401
    model = args.model
    if name == "modes_synthetic":
        return measure_modes(decoded(video), model)
    if name == "modes_jaffe":
        return measure_modes(jaffe_frames(args.jaffe), model)
    if name == "decode_video":
        t0 = time.perf_counter()
        n = len(decoded(video))
        return {"seconds": time.perf_counter() - t0, "frames": n}
    if name == "read_images":
        from facekit.imageio import read_image
        files = jaffe_files(args.jaffe)
        t0 = time.perf_counter()
        for p in files:
            read_image(p)
        return {"seconds": time.perf_counter() - t0, "frames": len(files)}
    if name == "floor_video_1":
        s, n = floor([str(video)], model, "video", 1)
        return {"seconds": s, "frames": n}
    if name == "floor_videos_2":
        copy = tmp / "copy.mp4"
        shutil.copy(video, copy)
        s, n = floor([str(video), str(copy)], model, "video", 2)
        return {"seconds": s, "frames": n}
    if name == "floor_images_1":
        s, n = floor(jaffe_files(args.jaffe), model, "image", 1)
        return {"seconds": s, "frames": n}
    if name == "floor_images_2":
        s, n = floor(jaffe_files(args.jaffe), model, "image", 2)
        return {"seconds": s, "frames": n}
    if name == "analyze_video_1":
        s, n = run_analyze([video], tmp / "a.csv", model, 1)
        return {"seconds": s, "frames": n}
    if name == "analyze_videos_2":
        copy = tmp / "copy.mp4"
        shutil.copy(video, copy)
        s, n = run_analyze([video, copy], tmp / "a.csv", model, 2)
        return {"seconds": s, "frames": n}
    if name == "analyze_images_1":
        s, n = run_analyze([args.jaffe], tmp / "a.csv", model, 1)
        return {"seconds": s, "frames": n}
    if name == "analyze_images_2":
        s, n = run_analyze([args.jaffe], tmp / "a.csv", model, 2)
        return {"seconds": s, "frames": n}
    if name == "naive_video_1":
        s, n = naive_video(video, model, tmp / "n.csv")
        return {"seconds": s, "frames": n}
    if name == "naive_images_1":
        s, n = naive_images(jaffe_files(args.jaffe), model, tmp / "n.csv")
        return {"seconds": s, "frames": n}
    raise SystemExit(f"unknown measurement {name}")


NAMES = ["modes_synthetic", "modes_jaffe", "decode_video", "read_images", "floor_video_1", "analyze_video_1", "naive_video_1",
         "floor_videos_2", "analyze_videos_2", "floor_images_1", "analyze_images_1", "naive_images_1",
         "floor_images_2", "analyze_images_2"]


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarise(rounds: list[dict], video_info: dict, n_jaffe: int, args: argparse.Namespace) -> dict:
    def med(name: str, key: str) -> float:
        return _median([r[name][key] for r in rounds])

    modes = {}
    for which in ("synthetic", "jaffe"):
        name = f"modes_{which}"
        keys = ("image_ms", "video_ms", "image_extras_ms", "video_extras_ms", "video_max4_ms", "image_max4_ms",
                "detector_only_ms")
        m = {k: round(med(name, k), 2) for k in keys}
        ratios = [r[name]["image_ms"] / r[name]["video_ms"] for r in rounds]
        m["video_over_image"] = round(_median(ratios), 3)
        m["video_over_image_per_round"] = [round(x, 3) for x in ratios]
        m["video_over_image_with_extras"] = round(_median([r[name]["image_extras_ms"] / r[name]["video_extras_ms"]
                                                           for r in rounds]), 3)
        m["extras_cost_image"] = round(_median([r[name]["image_extras_ms"] / r[name]["image_ms"] for r in rounds]), 3)
        m["extras_cost_video"] = round(_median([r[name]["video_extras_ms"] / r[name]["video_ms"] for r in rounds]), 3)
        # if tracking cost nothing, VIDEO mode would save the detector's share: the ceiling of the ratio
        m["ceiling_if_detector_free"] = round(_median([r[name]["image_ms"] / max(1e-6, r[name]["image_ms"]
                                                       - r[name]["detector_only_ms"]) for r in rounds]), 3)
        m["agreement_video_vs_image_fraction_of_iod"] = rounds[-1][name]["agreement"]
        m["faces_found"] = {"image": rounds[-1][name]["faces_image"], "video": rounds[-1][name]["faces_video"]}
        m["all_rounds"] = [{k: round(r[name][k], 2) for k in keys} for r in rounds]
        modes[which] = m
    rates = {}
    for name in NAMES:
        if name.startswith("modes"):
            continue
        rates[name] = {"frames": rounds[0][name]["frames"],
                       "seconds_median": round(med(name, "seconds"), 3),
                       "frames_per_second": round(rounds[0][name]["frames"] / med(name, "seconds"), 1),
                       "all_seconds": [round(r[name]["seconds"], 3) for r in rounds]}

    def ratio(a: str, b: str) -> float:  # time of b / time of a, median of rounds: > 1 means a is faster
        return round(_median([r[b]["seconds"] / r[a]["seconds"] for r in rounds]), 3)

    ends = {
        "analyze_video_1_vs_floor": ratio("analyze_video_1", "floor_video_1"),
        "analyze_videos_2_vs_floor": ratio("analyze_videos_2", "floor_videos_2"),
        "analyze_images_1_vs_floor": ratio("analyze_images_1", "floor_images_1"),
        "analyze_images_2_vs_floor": ratio("analyze_images_2", "floor_images_2"),
        "analyze_video_1_vs_naive": ratio("analyze_video_1", "naive_video_1"),
        "analyze_images_1_vs_naive": ratio("analyze_images_1", "naive_images_1"),
        "analyze_videos_2_workers_speedup": round(_median([
            (r["analyze_video_1"]["seconds"] / r["analyze_video_1"]["frames"])
            / (r["analyze_videos_2"]["seconds"] / r["analyze_videos_2"]["frames"]) for r in rounds]), 3),
    }
    goal = modes["synthetic"]["video_over_image"]
    return {
        "benchmark": "analyze", "repeat": args.repeat, "machine": machine(),
        "video": video_info,
        "real_sequence": {"source": str(args.jaffe), "frames": n_jaffe,
                          "what": "JAFFE's photographs (256x256 grey, real faces) ordered by subject: about 21 "
                                  "frames of each of 10 subjects in one frontal setup, as a frame sequence",
                          "why": "no real recording on this machine; CK+48's sequences are 3 frames of 48x48"},
        "modes": modes,
        "rates": rates,
        "ratios_median_of_rounds": ends,
        "goal": {"video_over_image_per_frame": 1.5, "measured_synthetic": goal,
                 "measured_jaffe": modes["jaffe"]["video_over_image"], "reached": goal >= 1.5,
                 "ceiling_synthetic": modes["synthetic"]["ceiling_if_detector_free"]},
        "load": {"loadavg_per_round": [r["_load"] for r in rounds], "steal_seconds_per_round":
                 [r["_steal"] for r in rounds],
                 "note": "1, 5, 15-minute load averages before and after each round; a load above the core "
                         "count means other processes shared the CPU"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jaffe", type=Path, default=DEFAULT_JAFFE)
    ap.add_argument("--model", default=os.environ.get("FACEKIT_MODEL", str(DEFAULT_MODEL)))
    ap.add_argument("--repeat", type=int, default=3, help="rounds (medians are reported)")
    ap.add_argument("--frames", type=int, default=300, help="frames of the synthetic video [300: 10 s at 30 fps]")
    ap.add_argument("--out", type=Path, default=None,
                    help="also write the JSON here [default: bench/results/analyze_<date>.json]")
    ap.add_argument("--one", help=argparse.SUPPRESS)       # internal: one measurement, JSON on stdout
    ap.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        tmp = Path(tempfile.mkdtemp(prefix="facekit-bench-"))
        try:
            print(json.dumps(one(args.one, args, args.video, tmp)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if not args.jaffe.is_dir():
        raise SystemExit(f"JAFFE not found at {args.jaffe} (--jaffe)")
    video = CACHE / f"talking_{args.frames}.mp4"
    video_info = talking_video(video, args.frames)
    n_jaffe = len(jaffe_files(args.jaffe))
    rounds = []
    for rnd in range(args.repeat):
        res: dict = {"_load": {"before": loadavg()}}
        steal0 = steal_seconds()
        for name in NAMES:
            cmd = [sys.executable, __file__, "--one", name, "--video", str(video), "--jaffe", str(args.jaffe),
                   "--model", args.model]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
            shown = (f"{res[name]['frames'] / res[name]['seconds']:7.1f} frames/s" if "seconds" in res[name] else
                     f"image {res[name]['image_ms']:.2f} ms, video {res[name]['video_ms']:.2f} ms per frame")
            print(f"round {rnd + 1}/{args.repeat} {name:<18} {shown}   load {loadavg()[0]}", file=sys.stderr)
        res["_load"]["after"] = loadavg()
        res["_steal"] = round(steal_seconds() - steal0, 2)
        rounds.append(res)
    result = summarise(rounds, video_info, n_jaffe, args)
    text = json.dumps(result, indent=2)
    print(text)
    out = args.out or HERE / "results" / f"analyze_{time.strftime('%Y-%m-%d')}.json"
    out.write_text(text + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
