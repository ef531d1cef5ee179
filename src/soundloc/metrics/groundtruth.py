"""Ground truth of the evaluation: box maps and the annotators' consensus map.

Senocak et al. (CVPR 2018, Sec. 5) define the consensus map of ``A`` annotators as
``g = min(Σ_j b_j / consensus, 1)`` with ``b_j`` the binary map of annotator ``j``'s box and
``consensus = 2`` ("a pixel is fully relevant when two annotators agree"). The Flickr-SoundNet
boxes live in a 256×256 frame; the evaluation (LVS) scales them to 224×224 by integer
truncation, ``int(224 * v / 256)``, and fills rows ``y1:y2`` and columns ``x1:x2``.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Protocol as TypingProtocol

import numpy as np
import torch

from soundloc.metrics.protocol import Protocol, get_protocol

Box = tuple[int, int, int, int]


class AnnotationLike(TypingProtocol):
    """What the metrics need of an annotation (:class:`soundloc.data.types.Annotation`)."""

    boxes: tuple[tuple[Box, ...], ...]
    frame_size: int


def _check_size(size: Any, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or int(size) <= 0:
        raise ValueError(f"{name} must be a positive int, got {size!r}")
    return int(size)


def check_box(box: Any, where: str = "box") -> Box:
    """Validate one box ``(x1, y1, x2, y2)`` of integers with ``x2 >= x1`` and ``y2 >= y1``.

    Raises:
        ValueError: not 4 integers, or ``x2 < x1`` / ``y2 < y1`` (the message shows the box).
    """
    if isinstance(box, torch.Tensor):
        box = box.tolist()
    try:
        coords = tuple(box)
    except TypeError:
        raise ValueError(f"{where} {box!r} is not a sequence (x1, y1, x2, y2)") from None
    if len(coords) != 4:
        raise ValueError(f"{where} {box!r} must have 4 coordinates (x1, y1, x2, y2)")
    for v in coords:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"{where} {box!r}: coordinates must be integers (pixel indices)")
    x1, y1, x2, y2 = (int(v) for v in coords)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{where} {box!r} has x2 < x1 or y2 < y1")
    return (x1, y1, x2, y2)


def scale_box(box: Sequence[int], from_size: int = 256, to_size: int = 224) -> Box:
    """Scale one box from the annotation frame to the evaluation frame as LVS does.

    Each coordinate becomes ``int(to_size * v / from_size)`` (truncation toward zero), e.g.
    255 -> ``int(223.125)`` = 223 and 1 -> ``int(0.875)`` = 0 for 256 -> 224. No clipping
    here; :func:`box_map` clips.
    """
    from_size = _check_size(from_size, "from_size")
    to_size = _check_size(to_size, "to_size")
    x1, y1, x2, y2 = check_box(box)
    return tuple(int(to_size * v / from_size) for v in (x1, y1, x2, y2))  # type: ignore[return-value]


def scale_boxes(boxes: Sequence[Sequence[int]], from_size: int = 256, to_size: int = 224) -> list[Box]:
    """:func:`scale_box` for a list of boxes."""
    return [scale_box(b, from_size, to_size) for b in boxes]


def _normalise_annotators(boxes: Any) -> list[list[Box]]:
    """Accept one box per annotator, or a list of boxes per annotator; validate every box."""
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.tolist()
    if hasattr(boxes, "tolist") and not isinstance(boxes, (list, tuple)):  # numpy arrays
        boxes = boxes.tolist()
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, Sequence):
        raise ValueError(f"boxes must be a list (one entry per annotator), got {type(boxes).__name__}")
    if len(boxes) == 4 and all(isinstance(v, numbers.Integral) for v in boxes):
        raise ValueError(
            f"boxes must be a list with one entry per annotator; got a single box {tuple(boxes)!r} (wrap it: [box])"
        )
    out: list[list[Box]] = []
    for j, entry in enumerate(boxes):
        if isinstance(entry, torch.Tensor) or (hasattr(entry, "tolist") and not isinstance(entry, (list, tuple))):
            entry = entry.tolist()
        if isinstance(entry, Sequence) and len(entry) > 0 and not isinstance(entry[0], (Sequence, torch.Tensor, np.ndarray)):
            out.append([check_box(entry, f"annotator {j}: box")])  # a single box
        elif isinstance(entry, Sequence) and not isinstance(entry, (str, bytes)):
            out.append([check_box(b, f"annotator {j}: box") for b in entry])  # several (or no) boxes
        else:
            raise ValueError(f"annotator {j}: expected a box (x1, y1, x2, y2) or a list of boxes, got {entry!r}")
    return out


def box_map(boxes: Sequence[Sequence[int]], size: int = 224, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Binary map ``[size, size]`` (float32) of the union of boxes, clipped to the frame.

    Boxes are half-open: rows ``y1:y2``, columns ``x1:x2``; an empty box (``x1 == x2`` or
    ``y1 == y2``) or one entirely outside the frame adds nothing.
    """
    size = _check_size(size)
    out = np.zeros((size, size), dtype=np.float32)
    for b in boxes:
        x1, y1, x2, y2 = (min(max(v, 0), size) for v in check_box(b))
        out[y1:y2, x1:x2] = 1.0
    t = torch.from_numpy(out)
    return t.to(device) if device is not None else t


def _count_into(annotators: list[list[Box]], size: int, box_union: bool, count: np.ndarray) -> np.ndarray:
    """Add to ``count`` (float32 ``[size, size]``) how many boxes cover each pixel, or how many
    annotators with ``box_union``. NumPy slices: many tiny torch ops are slow on a busy CPU."""
    for ann in annotators:
        clipped = [tuple(min(max(v, 0), size) for v in b) for b in ann]
        if box_union and len(clipped) > 1:
            union = np.zeros((size, size), dtype=bool)
            for x1, y1, x2, y2 in clipped:
                union[y1:y2, x1:x2] = True
            count += union
        else:
            for x1, y1, x2, y2 in clipped:
                count[y1:y2, x1:x2] += 1.0
    return count


def _consensus_from_count(count: np.ndarray, consensus: float) -> torch.Tensor:
    """``min(count / consensus, 1)`` in float32, in place."""
    np.divide(count, np.float32(consensus), out=count)
    np.minimum(count, np.float32(1.0), out=count)
    return torch.from_numpy(count)


def consensus_map(
    boxes: Sequence[Any],
    size: int = 224,
    consensus: float = 2,
    *,
    box_union: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Consensus map ``g = min(Σ_j b_j / consensus, 1)`` as float32 ``[size, size]`` (Sec. 5).

    Args:
        boxes: one entry per annotator: a box ``(x1, y1, x2, y2)`` or a list of boxes, integer
            pixel coordinates of the ``size × size`` frame (already scaled; see
            :func:`scale_boxes` / :func:`gt_map`), half-open; boxes are clipped to the frame.
        size: side of the frame.
        consensus: annotators that must agree for ``g = 1`` (>= 1).
        box_union: unite one annotator's boxes before counting (the paper's ``b_j``); by
            default every box counts once, as in the LVS code (see :class:`Protocol`).
        device: where to put the result.

    Raises:
        ValueError: a malformed box (``x2 < x1``, ``y2 < y1``, not 4 integers), a
            non-positive ``size`` or ``consensus < 1``.
    """
    size = _check_size(size)
    if isinstance(consensus, bool) or not isinstance(consensus, (int, float)) or not consensus >= 1:
        raise ValueError(f"consensus must be a number >= 1, got {consensus!r}")
    annotators = _normalise_annotators(boxes)
    count = _count_into(annotators, size, box_union, np.zeros((size, size), dtype=np.float32))
    g = _consensus_from_count(count, float(consensus))
    return g.to(device) if device is not None else g


def _annotation_boxes(annotation: Any) -> tuple[list[list[Box]], int]:
    try:
        boxes, frame = annotation.boxes, annotation.frame_size
    except AttributeError:
        raise TypeError(
            f"annotation must have .boxes and .frame_size (soundloc.data.types.Annotation), got {type(annotation).__name__}"
        ) from None
    frame = _check_size(frame, "annotation.frame_size")
    annotators = [[check_box(b, f"annotator {j}: box") for b in ann] for j, ann in enumerate(boxes)]
    return annotators, frame


def gt_map(annotation: AnnotationLike, protocol: Protocol | str | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Consensus map ``[size, size]`` (float32) of one annotation under ``protocol`` (LVS by default).

    Boxes are scaled from ``annotation.frame_size`` to ``protocol.size`` by integer
    truncation (:func:`scale_box`), clipped to the frame, and combined as in
    :func:`consensus_map` with ``protocol.consensus`` and ``protocol.box_union``.
    """
    p = get_protocol(protocol)
    count = _count_into(_scaled_boxes(annotation, p.size), p.size, p.box_union, np.zeros((p.size, p.size), dtype=np.float32))
    g = _consensus_from_count(count, float(p.consensus))
    return g.to(device) if device is not None else g


def _scaled_boxes(annotation: AnnotationLike, size: int) -> list[list[Box]]:
    annotators, frame = _annotation_boxes(annotation)
    return [[scale_box(b, frame, size) for b in ann] for ann in annotators]


def gt_maps(annotations: Sequence[AnnotationLike], protocol: Protocol | str | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """:func:`gt_map` of every annotation, stacked: ``[B, size, size]`` float32."""
    p = get_protocol(protocol)
    count = np.zeros((len(annotations), p.size, p.size), dtype=np.float32)
    for i, a in enumerate(annotations):
        _count_into(_scaled_boxes(a, p.size), p.size, p.box_union, count[i])
    g = _consensus_from_count(count, float(p.consensus))
    return g.to(device) if device is not None else g


def annotator_boxes(annotation: AnnotationLike, size: int = 224) -> list[list[Box]]:
    """Each annotator's boxes scaled from ``annotation.frame_size`` to ``size`` and clipped."""
    size = _check_size(size)
    annotators, frame = _annotation_boxes(annotation)
    return [
        [tuple(min(max(v, 0), size) for v in scale_box(b, frame, size)) for b in ann]  # type: ignore[misc]
        for ann in annotators
    ]


def annotator_maps(annotation: AnnotationLike, size: int = 224, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Binary map of each annotator, ``[A, size, size]`` float32 (for the paper's Table 3).

    Annotator ``j``'s map is the union of their boxes, scaled from ``annotation.frame_size``
    to ``size`` by integer truncation and clipped to the frame.
    """
    scaled = annotator_boxes(annotation, size)
    out = np.zeros((len(scaled), size, size), dtype=np.float32)
    for j, ann in enumerate(scaled):
        for x1, y1, x2, y2 in ann:
            out[j, y1:y2, x1:x2] = 1.0
    t = torch.from_numpy(out)
    return t.to(device) if device is not None else t


__all__ = ["annotator_maps", "box_map", "check_box", "consensus_map", "gt_map", "gt_maps", "scale_box",
           "scale_boxes"]
