"""VGG-Sound Sources (VGG-SS): its annotation file → :class:`Annotation`, and its clips → the
prepared layout.

VGG-SS (Chen et al., "Localizing Visual Sounds the Hard Way", CVPR 2021, "LVS") is the test
set that every method after 2021 reports beside Flickr-SoundNet. Its annotations are one JSON
file (``vggss.json`` in the LVS repository): a list of 5,158 entries::

    {"file": "zpWuikVorYg_000032", "class": "elk bugling", "bbox": [[0.403125, 0.253125, 0.6, 0.75]]}

``file`` is the VGG-Sound clip (a YouTube id and the clip's start), ``class`` one of 221 sound
classes, ``bbox`` one or more boxes ``[x1, y1, x2, y2]`` normalised to [0, 1] (4,619 entries
have one box, the rest up to 7). The clips themselves are 10 s YouTube excerpts that each user
downloads; many are gone, and published results use 4,911, 4,692 or 4,655 of them, while some
evaluation code silently intersects the list with whatever is on disk. Here the list of present
clips is always written out and counted (:func:`import_vggss`).

What this module stores (:func:`parse_vggss`):

- one :class:`Annotation` per entry with a single annotator holding all its boxes (the
  evaluation code of EZ-VSL and SLAVC unites them: ``Protocol.vggss``), the class as
  :attr:`Annotation.category`, tag ``""``;
- boxes in the 224×224 evaluation frame, each coordinate ``int(224 · clip(v, 0, 1))``
  (truncation), exactly what that code rasterises (``(np.clip(bbox, 0, 1) * 224).astype(int)``),
  so the ground truth is theirs pixel for pixel; coordinates outside [0, 1] are clipped as they
  do and counted in the report, never silently;
- degenerate boxes (``x1 == x2`` or ``y1 == y2``, present in the published file) are kept: they
  cover no pixel, as in that code.

A malformed entry (not an object, no ``file``, a ``file`` that is not ``<id>_<start>``, no
``class``, no box, a box that is not four finite numbers or has ``x2 < x1``, a ``file`` listed
twice) stops the import with one line naming the JSON file, the entry's position and its
``file``; with ``on_error="record"`` it goes to ``failures.csv`` instead.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundloc.data.layout import (
    ANNOTATIONS_FILE,
    FAILURES_FILE,
    read_failures,
    read_index,
    split_path,
    write_annotations,
    write_failures,
    write_id_list,
)
from soundloc.data.types import Annotation

#: Side of the frame VGG-SS boxes are stored in: the 224×224 evaluation frame of EZ-VSL/SLAVC.
VGGSS_FRAME = 224
#: Split names written by :func:`import_vggss` (``splits/<name>.txt``).
LISTED, PRESENT, MISSING = "vggss_listed", "vggss_present", "vggss_missing"
#: ``<YouTube id>_<start>``: the id may hold ``-`` and ``_``; the start is digits.
_FILE = re.compile(r"^[A-Za-z0-9_-]+_\d+$")


class VGGSSError(ValueError):
    """The annotation file, or one of its entries, cannot be read (the message names both)."""


def _box_to_frame(box: list[float]) -> tuple[tuple[int, int, int, int], int]:
    """``int(224 · clip(v, 0, 1))`` per coordinate, and how many were clipped."""
    clipped = sum(1 for v in box if v < 0.0 or v > 1.0)
    out = tuple(int(VGGSS_FRAME * min(max(float(v), 0.0), 1.0)) for v in box)
    return out, clipped  # type: ignore[return-value]


def _entry_error(entry: Any, reason: str) -> str:
    return reason if not isinstance(entry, dict) or "file" not in entry else f"(file {entry.get('file')!r}) {reason}"


def parse_entry(entry: Any) -> tuple[str, Annotation, int]:
    """One entry → ``(file, Annotation, clipped coordinates)``; ``ValueError`` says what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object {{file, class, bbox}}, got {type(entry).__name__}")
    name = entry.get("file")
    if not isinstance(name, str) or not name:
        raise ValueError("no 'file' (a string such as 'zpWuikVorYg_000032')")
    if not _FILE.match(name):
        raise ValueError(f"'file' {name!r} is not '<YouTube id>_<start>' (e.g. 'zpWuikVorYg_000032')")
    category = entry.get("class")
    if not isinstance(category, str) or not category.strip():
        raise ValueError("no 'class' (the sound's class name)")
    boxes = entry.get("bbox")
    if not isinstance(boxes, list) or not boxes:
        raise ValueError("'bbox' must be a non-empty list of boxes [x1, y1, x2, y2]")
    out, clipped = [], 0
    for k, box in enumerate(boxes):
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise ValueError(f"box {k} {box!r} is not four numbers [x1, y1, x2, y2]")
        if not all(math.isfinite(v) for v in box):
            raise ValueError(f"box {k} {box!r} has a coordinate that is not finite")
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f"box {k} {box!r} has x2 < x1 or y2 < y1")
        pixels, n = _box_to_frame(box)
        out.append(pixels)
        clipped += n
    return name, Annotation(boxes=(tuple(out),), tags=("",), frame_size=VGGSS_FRAME, category=category.strip()), clipped


@dataclass
class VGGSSAnnotations:
    """What :func:`parse_vggss` read.

    Attributes:
        annotations: ``{file: Annotation}`` in the file's order.
        failed: ``(file or "#<position>", reason)`` of the entries left out (``on_error="record"``).
        clipped: ``{file: coordinates clipped to [0, 1]}`` for the entries that had any.
        entries: entries in the file.
    """

    annotations: dict[str, Annotation] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    clipped: dict[str, int] = field(default_factory=dict)
    entries: int = 0

    @property
    def classes(self) -> list[str]:
        """The classes, sorted (a class's index in this list is its label)."""
        return sorted({a.category for a in self.annotations.values()})

    def box_counts(self) -> dict[int, int]:
        """``{boxes per entry: entries}``."""
        out: dict[int, int] = {}
        for a in self.annotations.values():
            n = len(a.boxes[0])
            out[n] = out.get(n, 0) + 1
        return dict(sorted(out.items()))

    def empty_boxes(self) -> int:
        """Boxes that cover no pixel of the 224 frame (zero width or height after truncation)."""
        return sum(1 for a in self.annotations.values() for x1, y1, x2, y2 in a.boxes[0] if x1 == x2 or y1 == y2)

    def summary(self) -> str:
        s = (f"{len(self.annotations)} of {self.entries} entries read: {len(self.classes)} classes; "
             f"boxes per entry {self.box_counts()}")
        if self.clipped:
            s += (f"; {sum(self.clipped.values())} coordinate(s) outside [0, 1] clipped in {len(self.clipped)} "
                  f"entr{'y' if len(self.clipped) == 1 else 'ies'} (e.g. {list(self.clipped)[:3]})")
        if self.empty_boxes():
            s += f"; {self.empty_boxes()} box(es) cover no pixel at 224x224"
        if self.failed:
            s += f"; {len(self.failed)} malformed entr{'y' if len(self.failed) == 1 else 'ies'} left out"
        return s


def parse_vggss(path: str | os.PathLike[str], on_error: str = "raise") -> VGGSSAnnotations:
    """Read a VGG-SS annotation file (see the module docstring).

    Raises:
        FileNotFoundError: the file is missing.
        VGGSSError: not JSON, not a non-empty list, or (``on_error="raise"``) a malformed entry:
            one line naming the file, the entry's position and its ``file``.
    """
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: VGG-SS annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VGGSSError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list) or not data:
        raise VGGSSError(f"{path}: expected a non-empty JSON list of entries {{file, class, bbox}}, "
                         f"got {type(data).__name__ if not isinstance(data, list) else 'an empty list'}")
    out = VGGSSAnnotations(entries=len(data))
    first_seen: dict[str, int] = {}
    for k, entry in enumerate(data):
        try:
            name, ann, clipped = parse_entry(entry)
            if name in first_seen:
                raise ValueError(f"listed twice (first at entry {first_seen[name]})")
        except ValueError as exc:
            reason = _entry_error(entry, str(exc))
            if on_error == "raise":
                raise VGGSSError(f"{path}: entry {k} {reason}") from None
            label = entry.get("file") if isinstance(entry, dict) and isinstance(entry.get("file"), str) else f"#{k}"
            out.failed.append((label, f"entry {k}: {reason}"))
            continue
        first_seen[name] = k
        out.annotations[name] = ann
        if clipped:
            out.clipped[name] = clipped
    if not out.annotations:
        raise VGGSSError(f"{path}: no entry could be read ({len(out.failed)} malformed)")
    return out


@dataclass
class VGGSSImport:
    """What :func:`import_vggss` did.

    Attributes:
        parsed: the annotation file as read.
        present: listed clips prepared in the output folder (frame and audio on disk), list order.
        missing: listed clips with no video under the videos folder and not prepared before.
        failed: ``(file, reason)`` of the listed clips whose video could not be prepared.
        unlisted: videos in the videos folder that the list does not name (left alone).
        prepared_now: clips prepared by this run.
    """

    parsed: VGGSSAnnotations
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    prepared_now: int = 0

    def summary(self) -> str:
        n = len(self.parsed.annotations)
        lines = [
            self.parsed.summary(),
            f"{len(self.present)} of {n} listed clips present (prepared) -> splits/{PRESENT}.txt"
            f" ({self.prepared_now} prepared by this run)",
            f"{len(self.missing)} missing (no video, never prepared) -> splits/{MISSING}.txt",
        ]
        if self.failed:
            lines.append(f"{len(self.failed)} video(s) could not be prepared -> {FAILURES_FILE}")
        if self.unlisted:
            lines.append(f"{len(self.unlisted)} video(s) in the folder are not in the list (ignored), "
                         f"e.g. {self.unlisted[:3]}")
        return "\n".join(lines)


def import_vggss(
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    videos: str | os.PathLike[str] | None = None,
    prepare: Any = None,
    on_error: str = "raise",
) -> VGGSSImport:
    """The VGG-SS annotation file (and its clips) → the prepared layout at ``out``.

    Writes ``annotations.json`` (every entry read, boxes in the 224 frame, the class kept; the
    sorted class list and the source beside the items), ``splits/vggss_listed.txt`` (every entry
    read), and, from the videos named ``<file>.<ext>`` directly in ``videos``, the frames and
    sounds through the video path of :func:`soundloc.data.prepare.prepare_videos` (``prepare``:
    its :class:`~soundloc.data.prepare.PrepareConfig`; the middle frame, stretched to the
    square: the boxes are normalised to the whole frame, so cropping would move them). Then
    ``splits/vggss_present.txt`` (listed clips whose frame and audio are in ``index.csv``, list
    order), ``splits/vggss_missing.txt`` and ``failures.csv`` (malformed entries and clips
    that could not be prepared). Nothing is intersected silently: the counts are in the
    returned :class:`VGGSSImport` and its ``summary()``.
    """
    from soundloc.data.prepare import PrepareConfig, find_videos, prepare_videos

    parsed = parse_vggss(annotations, on_error)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    listed = list(parsed.annotations)
    write_annotations(out / ANNOTATIONS_FILE, parsed.annotations, source=str(Path(annotations).name),
                      dataset="VGG-SS", classes=parsed.classes,
                      note="boxes: int(224 * clip(v, 0, 1)) of the normalised [x1, y1, x2, y2]; one annotator per clip")
    write_id_list(split_path(out, LISTED), listed)
    result = VGGSSImport(parsed=parsed)
    wanted = set(listed)

    def prepare_failures() -> list[tuple[str, str]]:  # rows of listed clips whose video failed
        return [f for f in read_failures(out / FAILURES_FILE) if f[0] in wanted and not f[1].startswith("entry ")]

    if videos is not None:
        cfg = prepare or PrepareConfig()
        if not isinstance(cfg, PrepareConfig):
            raise TypeError(f"prepare must be a PrepareConfig, got {type(cfg).__name__}")
        if cfg.resize != "stretch":
            raise ValueError("VGG-SS boxes are normalised to the whole frame: prepare with resize='stretch', not 'crop'")
        files = find_videos(videos)
        ours = [v for v in files if v.stem in wanted]
        result.unlisted = sorted(v.stem for v in files if v.stem not in wanted)
        if ours:
            result.prepared_now = len(prepare_videos(ours, out, cfg).prepared)
    indexed = {r["id"] for r in read_index(out)} if (out / "index.csv").is_file() else set()
    result.failed = [f for f in prepare_failures() if f[0] not in indexed]
    result.present = [i for i in listed if i in indexed]
    failed_ids = {i for i, _ in result.failed}
    result.missing = [i for i in listed if i not in indexed and i not in failed_ids]
    write_id_list(split_path(out, PRESENT), result.present)
    write_id_list(split_path(out, MISSING), result.missing)
    write_failures(out / FAILURES_FILE, list(parsed.failed) + result.failed)
    return result


__all__ = ["LISTED", "MISSING", "PRESENT", "VGGSSAnnotations", "VGGSSError", "VGGSSImport", "VGGSS_FRAME",
           "import_vggss", "parse_entry", "parse_vggss"]
