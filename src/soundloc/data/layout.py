"""The prepared-data layout: one folder that real and synthetic data both use.

::

    ROOT/
      index.csv           one row per pair: id, frame, audio[, extra columns]; paths relative to ROOT
      frames/<id>.jpg     the video frame (synthetic scenes are .png)
      audio/<id>.wav      mono, 22,050 Hz, 16-bit PCM
      annotations.json    optional: {"frame_size": 256, "items": {id: {"annotators": [...]}}}
      splits/<name>.txt   optional: one id per line (e.g. train.txt, test.txt, test249.txt)
      failures.csv        optional: id, reason (items a preparation step could not make)

Extra columns of ``index.csv`` are optional fields of a sample (:attr:`Sample.extras`): a
column whose name ends in ``_mask`` holds a relative path to a grey PNG mask (the synthetic
world's ``context_mask``); any other extra column holds a number (``label``, ``visible``...).
An empty cell means "this pair has no such field".
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from soundloc.data.types import ANNOTATION_FRAME, Annotation
from soundloc.utils.files import atomic_open, read_json

INDEX_FILE = "index.csv"
ANNOTATIONS_FILE = "annotations.json"
FAILURES_FILE = "failures.csv"
SPLITS_DIR = "splits"
FRAMES_DIR = "frames"
AUDIO_DIR = "audio"
REQUIRED_COLUMNS = ("id", "frame", "audio")


def read_index(root: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Read ``ROOT/index.csv`` as a list of rows (dicts of strings).

    Raises:
        FileNotFoundError: the index is missing (the message names the file).
        ValueError: a required column is missing, an id is empty or repeated.
    """
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no index.csv; is {root} a prepared data folder?")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        rows = [dict(r) for r in reader]
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):
        if not row["id"]:
            raise ValueError(f"{path}, line {n}: empty id")
        if row["id"] in seen:
            raise ValueError(f"{path}, line {n}: id {row['id']!r} appears twice")
        seen.add(row["id"])
    return rows


def write_index(root: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``ROOT/index.csv`` atomically; columns are id, frame, audio, then the extras in order."""
    columns = list(REQUIRED_COLUMNS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    path = Path(root) / INDEX_FILE
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            missing = [c for c in REQUIRED_COLUMNS if not row.get(c)]
            if missing:
                raise ValueError(f"index row {dict(row)!r} lacks {missing}")
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return path


def read_annotations(path: str | os.PathLike[str]) -> dict[str, Annotation]:
    """Read an ``annotations.json`` file into ``{id: Annotation}``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the JSON is malformed or an item lacks boxes (the message names the id).
    """
    path = Path(path)
    data = read_json(path, "annotations file")
    if not isinstance(data, dict) or not isinstance(data.get("items"), dict):
        raise ValueError(f"{path}: expected an object with an 'items' mapping")
    frame = data.get("frame_size", ANNOTATION_FRAME)
    out: dict[str, Annotation] = {}
    for key, item in data["items"].items():
        try:
            out[key] = Annotation.from_json(item, frame_size=int(frame))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: item {key!r} is malformed: {exc}") from exc
    return out


def write_annotations(
    path: str | os.PathLike[str], annotations: Mapping[str, Annotation], **metadata: Any
) -> Path:
    """Write ``{id: Annotation}`` as ``annotations.json`` (atomically).

    All annotations must share one ``frame_size``. ``metadata`` (e.g. ``source=...``) is stored
    beside the items and ignored by :func:`read_annotations`.
    """
    frames = {a.frame_size for a in annotations.values()} or {ANNOTATION_FRAME}
    if len(frames) != 1:
        raise ValueError(f"annotations with different frame sizes: {sorted(frames)}")
    doc = {**metadata, "frame_size": frames.pop(), "items": {k: a.to_json() for k, a in annotations.items()}}
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    return Path(path)


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Read a list of ids, one per line (blank lines and ``#`` comments skipped).

    A line may also be a file name or URL: the id is its base name without extension.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: id list not found")
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ids.append(Path(line.split("?")[0].rstrip("/")).stem if ("/" in line or "." in line) else line)
    return ids


def write_id_list(path: str | os.PathLike[str], ids: Iterable[str]) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        for i in ids:
            fh.write(f"{i}\n")
    return Path(path)


def split_path(root: str | os.PathLike[str], name: str) -> Path:
    """``ROOT/splits/<name>.txt``."""
    return Path(root) / SPLITS_DIR / f"{name}.txt"


def write_failures(path: str | os.PathLike[str], failures: Iterable[tuple[str, str]]) -> Path:
    """Write ``failures.csv`` (columns id, reason), atomically."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "reason"])
        for item_id, reason in failures:
            writer.writerow([item_id, reason])
    return Path(path)


def read_failures(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["id"], r["reason"]) for r in csv.DictReader(fh)]
