"""The evaluation protocol as data: which choices make two cIoU numbers comparable.

Senocak et al. (CVPR 2018, Sec. 5, "Evaluation metrics") score a localization map with the
consensus intersection over union (cIoU) against the three annotators' boxes and report the
success rate at cIoU 0.5 and the area under the success-rate curve (AUC). Later work scores
the 250 Flickr-SoundNet test pairs with one particular implementation of that protocol (the
evaluation code of "Localizing Visual Sounds the Hard Way", Chen et al., CVPR 2021: "LVS"),
and numbers are only comparable when every choice below is the same. :meth:`Protocol.lvs`
is that protocol and the default of every function in :mod:`soundloc.metrics`; the variants
seen in other repositories are the other presets in :data:`PRESETS`.

VGG-Sound Sources (VGG-SS, the test set that LVS introduced and every later paper reports beside
Flickr-SoundNet) has one annotation per clip, a list of boxes, and the evaluation code that
later papers share (EZ-VSL's and SLAVC's) unites them (``gt_map[gt_map > 0] = 1``): the preset ``"vggss"``
(:meth:`Protocol.vggss`) is LVS's pipeline with that ground truth. The SLAVC test code (the
extended, open-set protocol: :mod:`soundloc.metrics.openset`) resizes bicubically with aligned
corners and keeps pixels ``>=`` the median: presets ``"slavc"`` and ``"vggss-slavc"``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, Union

Threshold = Union[Literal["median"], float]
ResizeMode = Literal["bilinear", "bicubic"]


@dataclass(frozen=True)
class Protocol:
    """Every choice of the cIoU / success-rate / AUC evaluation.

    Attributes:
        size: side of the square evaluation frame (224 in LVS). Annotation boxes are scaled to
            it by integer truncation of ``size * v / frame_size``; heatmaps are resized to it.
        consensus: number of agreeing annotators that make a pixel fully relevant:
            ``g = min(count / consensus, 1)`` (2 in the paper: "two annotators agreeing").
        box_union: how one annotator's several boxes count. ``False`` (LVS code): every box
            adds 1 to the count, so two overlapping boxes *of one annotator* count twice there.
            ``True`` (the paper's definition, ``b_j`` = annotator j's binary map): an annotator's
            boxes are first united. The two agree whenever no annotator drew overlapping boxes.
        resize: interpolation used to bring a heatmap to ``size × size`` (no antialiasing).
        align_corners: ``False`` = half-pixel centres (OpenCV ``INTER_LINEAR``, LVS);
            ``True`` = corner pixels aligned (a variant).
        threshold: ``"median"`` (LVS): threshold at the value at 0-based position ``⌊N/2⌋`` of
            the sorted, flattened, min-max normalised map (``N = size²``); or a fixed τ in
            [0, 1] applied to the normalised map (the paper's ``A(τ) = {i | α_i > τ}``).
        inclusive: keep pixels ``>=`` the threshold instead of strictly ``>`` (LVS: ``>``).
        keep_max: also keep every pixel equal to the map's maximum. The LVS script does this
            by accident (it binarises in place, ``pred[pred > thr] = 1; pred[pred < 1] = 0``, so
            pixels already equal to 1 survive); it changes the kept set only when more than
            half of the pixels tie at the maximum, which a model's resized map never does.
            Off by default, so that a constant map keeps no pixel (the documented rule).
        success_threshold: cIoU a pair must reach to count as localized (0.5).
        success_inclusive: success is ``cIoU >= t`` (LVS) rather than ``cIoU > t``.
        auc_points: number of equally spaced cIoU thresholds of the success-rate curve from 0
            to 1 (21: 0, 0.05, ..., 1.0, computed as ``0.05 * i`` in float64 as LVS does); the
            AUC is the trapezoidal area under it.
    """

    size: int = 224
    consensus: float = 2
    box_union: bool = False
    resize: ResizeMode = "bilinear"
    align_corners: bool = False
    threshold: Threshold = "median"
    inclusive: bool = False
    keep_max: bool = False
    success_threshold: float = 0.5
    success_inclusive: bool = True
    auc_points: int = 21

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise ValueError(f"Protocol.size must be a positive int, got {self.size!r}")
        if isinstance(self.consensus, bool) or not isinstance(self.consensus, (int, float)) or not (
            math.isfinite(self.consensus) and self.consensus >= 1
        ):
            raise ValueError(f"Protocol.consensus must be a number >= 1, got {self.consensus!r}")
        if self.resize not in ("bilinear", "bicubic"):
            raise ValueError(f"Protocol.resize must be 'bilinear' or 'bicubic', got {self.resize!r}")
        if isinstance(self.threshold, str):
            if self.threshold != "median":
                raise ValueError(f"Protocol.threshold must be 'median' or a float in [0, 1], got {self.threshold!r}")
        elif isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not (
            0.0 <= float(self.threshold) <= 1.0
        ):
            raise ValueError(f"Protocol.threshold must be 'median' or a float in [0, 1], got {self.threshold!r}")
        if isinstance(self.success_threshold, bool) or not isinstance(self.success_threshold, (int, float)) or not (
            0.0 <= float(self.success_threshold) <= 1.0
        ):
            raise ValueError(f"Protocol.success_threshold must be in [0, 1], got {self.success_threshold!r}")
        if isinstance(self.auc_points, bool) or not isinstance(self.auc_points, int) or self.auc_points < 2:
            raise ValueError(f"Protocol.auc_points must be an int >= 2, got {self.auc_points!r}")
        for name in ("box_union", "align_corners", "inclusive", "keep_max", "success_inclusive"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Protocol.{name} must be a bool, got {getattr(self, name)!r}")

    @classmethod
    def lvs(cls) -> "Protocol":
        """The protocol of the LVS evaluation code (CVPR 2021), used by later work: the default."""
        return cls()

    @classmethod
    def vggss(cls) -> "Protocol":
        """VGG-SS under LVS's pipeline: one annotator whose boxes are united, and a pixel inside
        any box fully relevant (``consensus=1``, ``box_union=True``), as the VGG-SS code of
        EZ-VSL and SLAVC does (boxes normalised to [0, 1], scaled to the 224 frame by
        truncation: :mod:`soundloc.data.vggss` stores them that way)."""
        return cls(consensus=1, box_union=True)

    def replace(self, **changes: object) -> "Protocol":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def auc_thresholds(self) -> list[float]:
        """The cIoU thresholds of the success-rate curve: ``step * i`` for ``i = 0..auc_points-1``.

        With 21 points ``step = 1/20 == 0.05`` and the thresholds are exactly LVS's
        ``0.05 * i`` in float64 (e.g. ``0.05 * 3 = 0.15000000000000002``, so a cIoU of exactly
        0.15 does not count at that threshold, as in LVS).
        """
        step = 1.0 / (self.auc_points - 1)
        return [step * i for i in range(self.auc_points)]

    def describe(self) -> str:
        """One line saying what the protocol does."""
        thr = "median (value at sorted position N//2)" if self.threshold == "median" else f"tau={self.threshold:g}"
        keep = ">=" if self.inclusive else ">"
        resize = f"{self.resize}{', align_corners' if self.align_corners else ', half-pixel'}"
        succ = ">=" if self.success_inclusive else ">"
        boxes = "union per annotator" if self.box_union else "each box counts"
        extra = ", max always kept" if self.keep_max else ""
        return (
            f"{self.size}x{self.size}, consensus {self.consensus:g} ({boxes}), resize {resize}, "
            f"keep {keep} {thr}{extra}, success cIoU {succ} {self.success_threshold:g}, "
            f"AUC over {self.auc_points} thresholds (trapezoid)"
        )


#: Named protocols: ``"lvs"`` (the default) and the variants found in later repositories.
PRESETS: dict[str, Protocol] = {
    "lvs": Protocol(),
    "fixed-0.5": Protocol(threshold=0.5),
    "inclusive": Protocol(inclusive=True),
    "bicubic": Protocol(resize="bicubic"),
    "align-corners": Protocol(align_corners=True),
    "strict-success": Protocol(success_inclusive=False),
    "paper-union": Protocol(box_union=True),
    "lvs-code": Protocol(keep_max=True),
    "vggss": Protocol(consensus=1, box_union=True),
    "slavc": Protocol(resize="bicubic", align_corners=True, inclusive=True),
    "vggss-slavc": Protocol(consensus=1, box_union=True, resize="bicubic", align_corners=True, inclusive=True),
}

#: The preset each benchmark set is scored with by default (``soundloc benchmark``).
SET_PROTOCOLS: dict[str, str] = {"flickr": "lvs", "vggss": "vggss", "synthetic": "lvs"}


def get_protocol(protocol: "Protocol | str | None" = None) -> Protocol:
    """Resolve ``None`` (the LVS default), a preset name or a :class:`Protocol`."""
    if protocol is None:
        return PRESETS["lvs"]
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, str):
        try:
            return PRESETS[protocol]
        except KeyError:
            raise ValueError(f"unknown protocol {protocol!r}; presets: {sorted(PRESETS)}") from None
    raise TypeError(f"protocol must be a Protocol, a preset name or None, got {type(protocol).__name__}")


__all__ = ["PRESETS", "Protocol", "get_protocol"]
