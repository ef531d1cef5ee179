"""soundloc.data.types: Annotation validation, JSON form, collate."""
from __future__ import annotations

import pytest
import torch

from soundloc.data.types import Annotation, Sample, collate


def make_sample(i: int, gt: bool, extras: dict | None = None) -> Sample:
    return Sample(
        id=f"s{i}",
        image=torch.full((3, 8, 8), float(i)),
        waveform=torch.arange(5, dtype=torch.float32) + i,
        annotation=None,
        gt_attention=torch.full((2, 2), 0.25) if gt else None,
        extras=extras or {},
    )


def test_annotation_normalises_and_round_trips() -> None:
    a = Annotation(boxes=[[(1, 2, 3, 4)], [], [(0, 0, 256, 256), (5, 5, 6, 6)]], tags=["object", "ambient", ""])
    assert a.boxes == (((1, 2, 3, 4),), (), ((0, 0, 256, 256), (5, 5, 6, 6)))
    assert a.num_annotators == 3
    assert Annotation.from_json(a.to_json()) == a


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"boxes": (((5, 0, 4, 1),),)}, "x2 < x1"),
        ({"boxes": (((0, 5, 1, 4),),)}, "y2 < y1"),
        ({"boxes": (((0, 0, 1),),)}, "4 coordinates"),
        ({"boxes": (((0, 0, 1, 1),),), "tags": ("object", "object")}, "2 tags for 1"),
        ({"boxes": (((0, 0, 1, 1),),), "tags": ("train",)}, "unknown tag"),
        ({"boxes": (), "frame_size": 0}, "frame_size"),
    ],
)
def test_annotation_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Annotation(**kwargs)


def test_collate_stacks_and_marks_ground_truth() -> None:
    label = {"label": torch.tensor(1)}
    b = collate([make_sample(0, True, label), make_sample(1, False, label), make_sample(2, True)])
    assert b.ids == ["s0", "s1", "s2"]
    assert b.image.shape == (3, 3, 8, 8) and b.image[2, 0, 0, 0] == 2.0
    assert b.waveform.shape == (3, 5) and b.waveform[1, 0] == 1.0
    assert b.has_gt.tolist() == [True, False, True]
    assert b.gt_attention.shape == (3, 2, 2)
    assert b.gt_attention[1].abs().sum() == 0 and b.gt_attention[0].sum() == pytest.approx(1.0)
    assert b.extras == {}  # "label" is not in every sample
    assert len(b) == 3 and b.to("cpu").ids == b.ids


def test_collate_rejects_mismatched_shapes() -> None:
    a, c = make_sample(0, False), make_sample(1, False)
    c.waveform = torch.zeros(7)
    with pytest.raises(ValueError, match="waveforms of different lengths"):
        collate([a, c])
    c = make_sample(1, False)
    c.image = torch.zeros(3, 4, 4)
    with pytest.raises(ValueError, match="images of different shapes"):
        collate([a, c])
    with pytest.raises(ValueError, match="at least one"):
        collate([])
