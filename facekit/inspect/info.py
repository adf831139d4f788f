"""What a facekit file holds: ``facekit info``.

:func:`file_info` returns a JSON-ready dict (the ``--json`` output);
:func:`format_info` renders it for people. The dict is versioned by
``info_version``; keys are only ever added within a version.

JSON object (``info_version`` 1)::

    info_version     1
    path             the file as given
    schema           "facekit/faces";  schema_version  int;  facekit_version  str (writer)
    dataset          adapter name;  created  ISO 8601 time the file was written
    augment          "paper" or "none"
    counts           {samples, faces, subjects, sequences, classes, rejects}: ints
    samples_image    {shape: [N, P, P(, 3)], dtype: "uint8", channels: 1 or 3}
    faces_image      {shape: [F, C, C(, 3)], dtype, channels}
    face_box         [x, y, size] of the face box in each aligned canvas;  patch_size  int
    face_data        {pose: bool, blendshapes: bool}: whether faces/pose (pitch, yaw, roll)
                     and faces/blendshapes (52 scores) are stored (false for schema-1 files)
    storage          {file_bytes, parts_bytes, parts_folder, part_files}
    classes          [{label, name, samples, faces, subjects}]  in label order; label -1
                     ("unlabelled") last when present
    subjects         [{name, samples, faces, fold (int or null), samples_per_class {name: n}}]
                     in /subjects order
    folds            null, or {k, seed (int or null), method, created, max_class_deviation
                     (fraction), split_subjects [names], folds: [{fold, subjects [names],
                     samples, samples_per_class {name: n}}]}, or {error: str} if unreadable
    config           the preparation config stored in the file (as written by prepare)
    rejects          {count, by_reason: [{reason, count, examples [paths]}]}; reasons by
                     count, most frequent first; examples: the first 3 paths, all with
                     verbose=True
    warnings         [str]: things to fix before training (no real subject ids, unreadable
                     folds, subjects split across folds); empty when all is well
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacekitError
from ..split.folds import read_folds
from ..store import FacekitFile, open_facekit, schema, verify_parts
from ..store.reader import part_files

__all__ = ["file_info", "format_info", "check_parts", "INFO_VERSION", "EXAMPLES_PER_REASON"]

INFO_VERSION = 1
EXAMPLES_PER_REASON = 3


def _image_info(ds: Any) -> dict[str, Any]:
    shape = [int(x) for x in ds.shape]
    return {"shape": shape, "dtype": str(ds.dtype), "channels": 3 if len(shape) == 4 else 1}


def _storage(f: FacekitFile) -> dict[str, Any]:
    base = f.path.resolve().parent
    files: set[Path] = set()
    for name in schema.VIRTUAL:
        ds = f.h5[name]
        if ds.is_virtual:
            for src in ds.virtual_sources():
                if src.file_name != ".":
                    p = Path(src.file_name)
                    files.add(p if p.is_absolute() else base / p)
    return {
        "file_bytes": f.path.stat().st_size,
        "parts_bytes": sum(p.stat().st_size for p in files if p.exists()),
        "parts_folder": os.path.basename(schema.parts_dir_for(str(f.path))),
        "part_files": len(files),
    }


def _rejects(f: FacekitFile, verbose: bool) -> dict[str, Any]:
    groups: dict[str, list[str]] = defaultdict(list)
    rejects = f.rejects
    for path, reason in rejects:
        groups[reason].append(path)
    by_reason = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {
        "count": len(rejects),
        "by_reason": [{"reason": r, "count": len(p), "examples": p if verbose else p[:EXAMPLES_PER_REASON]}
                      for r, p in by_reason],
    }


def file_info(source: FacekitFile | str | os.PathLike, *, verbose: bool = False) -> dict[str, Any]:
    """Everything ``facekit info`` reports about a file, as a JSON-ready dict.

    See the module docstring for the keys. ``verbose`` lists every rejected
    path instead of a few examples per reason.

    Raises:
        NotAFacekitFileError: not a (complete) facekit file.
    """
    if not isinstance(source, FacekitFile):
        with open_facekit(source) as f:
            return file_info(f, verbose=verbose)
    f = source
    a = f.h5.attrs
    s_label = f.column("samples/label").astype(np.int64)
    f_label = f.column("faces/label").astype(np.int64)
    s_subj = f.column("samples/subject").astype(np.int64)
    f_subj = f.column("faces/subject").astype(np.int64)
    subjects = f.subjects
    classes = schema.class_list(np.concatenate([s_label, f_label]), f.label_names)
    try:
        folds = read_folds(f)
        folds_err = None
    except FacekitError as exc:
        folds, folds_err = None, str(exc)

    class_rows = []
    for label, name in classes:
        fm = f_label == label
        class_rows.append({"label": label, "name": name, "samples": int(np.count_nonzero(s_label == label)),
                           "faces": int(np.count_nonzero(fm)), "subjects": int(np.unique(f_subj[fm]).size)})
    n_s = len(subjects)
    samples_per_subject = np.bincount(s_subj[s_subj >= 0], minlength=n_s)
    faces_per_subject = np.bincount(f_subj[f_subj >= 0], minlength=n_s)
    per_subject_class = {label: np.bincount(s_subj[(s_label == label) & (s_subj >= 0)], minlength=n_s)
                         for label, _ in classes}
    subject_rows = []
    for i, name in enumerate(subjects):
        fold = None if folds is None or folds.subject_fold[i] < 0 else int(folds.subject_fold[i])
        subject_rows.append({
            "name": name, "samples": int(samples_per_subject[i]), "faces": int(faces_per_subject[i]), "fold": fold,
            "samples_per_class": {cn: int(per_subject_class[lab][i]) for lab, cn in classes
                                  if per_subject_class[lab][i]},
        })

    folds_info: dict[str, Any] | None
    if folds_err is not None:
        folds_info = {"error": folds_err}
    elif folds is None:
        folds_info = None
    else:
        dev, _, _ = folds.max_deviation()
        folds_info = {
            "k": folds.k, "seed": folds.seed, "method": folds.method, "created": folds.created,
            "max_class_deviation": round(dev, 6), "split_subjects": folds.split_subjects,
            "folds": [{"fold": i, "subjects": subs, "samples": int(n),
                       "samples_per_class": dict(zip(folds.class_names, (int(c) for c in cc)))}
                      for i, (subs, n, cc) in enumerate(zip(folds.subjects_per_fold, folds.samples_per_fold,
                                                            folds.class_counts))],
        }

    rejects = _rejects(f, verbose)
    warnings = []
    cfg = f.config
    if cfg.get("dataset") == "folder" and not (cfg.get("options") or {}).get("subject_regex"):
        warnings.append("no subject ids: prepared with the folder adapter without --subject-regex, so every "
                        "sequence counts as its own subject; subject-disjoint folds are not possible")
    if folds_err is not None:
        warnings.append(f"folds unreadable: {folds_err}")
    elif folds is not None and folds.split_subjects:
        warnings.append(f"{len(folds.split_subjects)} subject(s) have samples in more than one fold "
                        f"(e.g. {folds.split_subjects[0]}); make the folds again with `facekit folds --force`")
    return {
        "info_version": INFO_VERSION,
        "path": str(f.path),
        "schema": str(a.get("facekit_schema")),
        "schema_version": f.schema_version,
        "facekit_version": str(a.get("facekit_version", "")),
        "dataset": f.dataset,
        "created": str(a.get("created", "")),
        "augment": f.augment,
        "counts": {"samples": f.n_samples, "faces": f.n_faces, "subjects": n_s,
                   "sequences": len(f.sequences), "classes": len(classes), "rejects": rejects["count"]},
        "samples_image": _image_info(f.h5["samples/image"]),
        "faces_image": _image_info(f.h5["faces/image"]),
        "face_box": list(f.face_box),
        "patch_size": f.patch_size,
        "face_data": {"pose": f.has_pose, "blendshapes": f.has_blendshapes},
        "storage": _storage(f),
        "classes": class_rows,
        "subjects": subject_rows,
        "folds": folds_info,
        "config": f.config,
        "rejects": rejects,
        "warnings": warnings,
    }


def check_parts(source: FacekitFile | str | os.PathLike, progress: Any = None) -> dict[str, Any]:
    """Verify every part file completely (``facekit info --check``; see
    :func:`facekit.store.verify_parts`): ``{parts, bytes, problems: [{path, problem}]}``.
    ``progress(n_bytes)`` is called as the parts are read."""
    if not isinstance(source, FacekitFile):
        with open_facekit(source) as f:
            return check_parts(f, progress)
    files = list(part_files(source.h5, source.path).values())
    problems = verify_parts(source, progress)
    return {"parts": len(files), "bytes": sum(p.stat().st_size for p in files if p.exists()),
            "problems": [{"path": p, "problem": why} for p, why in problems]}


# text -----------------------------------------------------------------------------
def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def _table(head: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = [lambda c, w: c.ljust(w)] + [lambda c, w: c.rjust(w)] * (len(head) - 1)
    out = [indent + "  ".join(fm(h, w) for fm, h, w in zip(fmt, head, widths)).rstrip()]
    out += [indent + "  ".join(fm(c, w) for fm, c, w in zip(fmt, r, widths)).rstrip() for r in rows]
    return out


def _img(d: dict[str, Any]) -> str:
    dims = "x".join(str(x) for x in d["shape"][1:3])
    return f"{dims} {d['dtype']} {'RGB' if d['channels'] == 3 else 'grayscale'}"


def _config_lines(config: dict[str, Any]) -> list[str]:
    def show(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k}={show(v)}" for k, v in value.items()) or "-"
        else:
            text = show(value)
        lines.append(f"  {key:<14}{text}")
    return lines


def _face_data(info: dict[str, Any], n_faces: int) -> str:
    fd = info.get("face_data") or {}
    have = [what for key, what in (("pose", "head pose (faces/pose: pitch, yaw, roll)"),
                                   ("blendshapes", "52 blendshapes (faces/blendshapes)")) if fd.get(key)]
    if have:
        return " and ".join(have) + f" for each of the {n_faces} faces"
    why = ("a schema-1 file; prepare again to add them" if info["schema_version"] < 2
           else "prepared with pose_blendshapes=False")
    return f"no head pose or blendshapes ({why})"


def format_info(info: dict[str, Any], *, verbose: bool = False) -> str:
    """Render :func:`file_info`'s dict as text. ``verbose`` adds the per-subject table
    and every rejected path (when the dict was made with ``verbose=True``)."""
    c = info["counts"]
    out = [f"{info['path']}: {info['schema']} v{info['schema_version']}, written by facekit "
           f"{info['facekit_version']} on {info['created']}"]
    root = info["config"].get("root")
    out.append(f"dataset     {info['dataset']}" + (f"  ({root})" if root else ""))
    aug = info["augment"]
    per_face = c["samples"] / c["faces"] if c["faces"] else 0
    out.append(f"samples     {c['samples']}  ({_img(info['samples_image'])}; augment {aug}, "
               f"{per_face:g} per face)")
    x, y, size = info["face_box"]
    out.append(f"faces       {c['faces']}  ({_img(info['faces_image'])} canvas, face box {size} px at ({x}, {y}))")
    out.append(f"face data   {_face_data(info, c['faces'])}")
    spf = [s["samples"] for s in info["subjects"]]
    spread = f"  (samples per subject: min {min(spf)}, median {int(np.median(spf))}, max {max(spf)})" if spf else ""
    out.append(f"subjects    {c['subjects']}{spread}")
    out.append(f"sequences   {c['sequences']}")
    st = info["storage"]
    out.append(f"storage     {_size(st['file_bytes'])} file + {_size(st['parts_bytes'])} in "
               f"{st['part_files']} part files ({st['parts_folder']}/)")

    out.append("")
    total = max(1, c["samples"])
    out.append(f"classes     {c['classes']}")
    out += _table(["class", "samples", "share", "faces", "subjects"],
                  [[r["name"], str(r["samples"]), f"{100 * r['samples'] / total:.1f}%", str(r["faces"]),
                    str(r["subjects"])] for r in info["classes"]])

    out.append("")
    folds = info["folds"]
    if folds is None:
        out.append("folds       none (make them with `facekit folds FILE --k 10`)")
    elif "error" in folds:
        out.append(f"folds       unreadable: {folds['error']}")
    else:
        seed = "" if folds["seed"] is None or folds["method"] == "LeaveOneSubjectOut" else f", seed {folds['seed']}"
        dev = "" if folds["method"] == "LeaveOneSubjectOut" else \
            f"; largest class share deviation {100 * folds['max_class_deviation']:.1f} points"
        out.append(f"folds       {folds['k']} ({folds['method']}{seed}, created {folds['created']}{dev})")
        names = [r["name"] for r in info["classes"]]
        rows = [[str(fd["fold"]), str(len(fd["subjects"])), str(fd["samples"]),
                 *(str(fd["samples_per_class"].get(n, 0)) for n in names)] for fd in folds["folds"]]
        out += _table(["fold", "subjects", "samples", *names], rows)

    if verbose:
        out.append("")
        out.append("subjects")
        names = [r["name"] for r in info["classes"]]
        rows = [[s["name"], "-" if s["fold"] is None else str(s["fold"]), str(s["samples"]), str(s["faces"]),
                 *(str(s["samples_per_class"].get(n, 0)) for n in names)] for s in info["subjects"]]
        out += _table(["subject", "fold", "samples", "faces", *names], rows)

    out.append("")
    out.append("config")
    out += _config_lines(info["config"])

    out.append("")
    rj = info["rejects"]
    out.append(f"rejects     {rj['count']}" + ("" if rj["count"] else "  (everything found was used)"))
    for group in rj["by_reason"]:
        out.append(f"  {group['count']:>5}  {group['reason']}")
        for p in group["examples"]:
            out.append(f"         {p}")
        more = group["count"] - len(group["examples"])
        if more > 0:
            out.append(f"         ... {more} more (--verbose lists all)")
    for w in info["warnings"]:
        out.append(f"WARNING: {w}")
    return "\n".join(out)
