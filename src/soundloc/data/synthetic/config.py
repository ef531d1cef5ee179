"""The knobs of the synthetic world (:class:`WorldConfig`) and its fixed tables."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soundloc.config import ConfigMixin
from soundloc.data.types import ANNOTATION_FRAME, SAMPLE_RATE

#: Shapes the classes are drawn as (class k uses SHAPES[k]).
SHAPES = ("disk", "square", "triangle", "plus", "ring", "diamond", "cross", "H")
#: Largest number of classes the world supports (one shape per class).
MAX_CLASSES = len(SHAPES)
#: Scene kinds.
KINDS = ("object", "ambient", "offscreen")


@dataclass
class WorldConfig(ConfigMixin):
    """The knobs of the synthetic world (see :mod:`soundloc.data.synthetic` for what they mean).

    Attributes:
        num_classes: ``K`` sound-source classes (2..8).
        image_size: side of the square image in pixels.
        sample_rate: audio rate (22,050 Hz, SoundNet's).
        clip_seconds: length of each clip (short, for CPU models; the short SoundNet variant
            needs at least 0.42 s).
        context_p: probability that the ground band shows the sounding class's texture (the
            strength of the co-occurrence the superstition feeds on); otherwise the band shows
            one of the other classes, uniformly. At ``1/K`` the band carries no information
            about the sound; below ``1/K`` it is anti-correlated with it. It applies to the
            context-bound classes only (``bound_fraction``).
        bound_fraction: fraction of the classes that are context-bound: classes
            ``0 .. round(bound_fraction * K) - 1`` (halves round to even) show their own texture
            with probability ``context_p``; the others are free, probability ``1/K`` (a band
            uniform over the ``K`` classes; :meth:`class_context_p`). ``1.0`` is the world as it
            was before this field (every class bound): configs saved then lack the key, and
            :meth:`from_dict` loads them with ``1.0``.
        n_distractors: silent background objects per scene (classes drawn independently of the
            sound's class).
        object_scale: range of the sounding object's box side, as a fraction of the image side.
        object_aspect: range of its width/height ratio.
        max_rotation: largest rotation of an object in degrees (pose); kept below 22.5 so that
            "square" and "diamond", "plus" and "cross" stay distinguishable.
        distractor_scale: range of the silent objects' box side (fraction of the image side).
        band_height: range of the ground band's height (fraction of the image side).
        offscreen_p: probability that the sounding object is out of view (no annotation).
        ambient_p: probability that the sound is the context's ambient noise (tag "ambient").
        pitch_jitter: standard deviation of the log pitch factor of a clip.
        timbre_jitter: standard deviation of the log gain of each harmonic.
        loudness: range of the source's peak amplitude.
        noise_level: standard deviation of the background white noise.
        pixel_noise: standard deviation of the image's pixel noise.
        annotator_jitter: standard deviation of an annotator's box edges, as a fraction of the
            box's side.
        num_annotators: simulated annotators per annotated scene (3 as in the real data).
        annotation_frame: side of the frame the boxes are given in (256 as in the real data).
    """

    num_classes: int = 4
    image_size: int = 64
    sample_rate: int = SAMPLE_RATE
    clip_seconds: float = 1.0
    context_p: float = 0.9
    bound_fraction: float = 0.5
    n_distractors: int = 3
    object_scale: tuple[float, float] = (0.5, 0.7)
    object_aspect: tuple[float, float] = (0.8, 1.25)
    max_rotation: float = 15.0
    distractor_scale: tuple[float, float] = (0.2, 0.32)
    band_height: tuple[float, float] = (0.3, 0.4)
    offscreen_p: float = 0.05
    ambient_p: float = 0.05
    pitch_jitter: float = 0.04
    timbre_jitter: float = 0.25
    loudness: tuple[float, float] = (0.3, 0.8)
    noise_level: float = 0.03
    pixel_noise: float = 0.03
    annotator_jitter: float = 0.06
    num_annotators: int = 3
    annotation_frame: int = ANNOTATION_FRAME

    def __post_init__(self) -> None:
        def rng_pair(name: str, lo: float, hi: float) -> None:
            val = tuple(getattr(self, name))
            if len(val) != 2 or not (lo <= val[0] <= val[1] <= hi):
                raise ValueError(f"{name} must be a pair lo <= hi within [{lo}, {hi}], got {getattr(self, name)!r}")
            object.__setattr__(self, name, (float(val[0]), float(val[1])))

        if not isinstance(self.num_classes, int) or not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be an int in [2, {MAX_CLASSES}], got {self.num_classes!r}")
        if not isinstance(self.image_size, int) or self.image_size < 16:
            raise ValueError(f"image_size must be an int >= 16, got {self.image_size!r}")
        if not isinstance(self.sample_rate, int) or self.sample_rate < 1000:
            raise ValueError(f"sample_rate must be an int >= 1000, got {self.sample_rate!r}")
        if not self.clip_seconds > 0:
            raise ValueError(f"clip_seconds must be > 0, got {self.clip_seconds!r}")
        for name in ("context_p", "offscreen_p", "ambient_p"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)!r}")
        bf = self.bound_fraction
        if isinstance(bf, bool) or not isinstance(bf, (int, float)) or not 0.0 <= bf <= 1.0:
            raise ValueError(f"bound_fraction must be a fraction in [0, 1], got {bf!r}")
        if self.offscreen_p + self.ambient_p > 1.0:
            raise ValueError(f"offscreen_p + ambient_p must be <= 1, got {self.offscreen_p} + {self.ambient_p}")
        if not isinstance(self.n_distractors, int) or self.n_distractors < 0:
            raise ValueError(f"n_distractors must be a non-negative int, got {self.n_distractors!r}")
        rng_pair("object_scale", 0.05, 1.0)
        rng_pair("object_aspect", 0.25, 4.0)
        rng_pair("distractor_scale", 0.05, 1.0)
        rng_pair("band_height", 0.05, 0.9)
        rng_pair("loudness", 0.0, 1.0)
        if not 0.0 <= self.max_rotation < 45.0:
            raise ValueError(f"max_rotation must be in [0, 45) degrees, got {self.max_rotation!r}")
        for name in ("pitch_jitter", "timbre_jitter", "noise_level", "pixel_noise", "annotator_jitter"):
            if not float(getattr(self, name)) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.num_annotators, int) or self.num_annotators < 1:
            raise ValueError(f"num_annotators must be a positive int, got {self.num_annotators!r}")
        if not isinstance(self.annotation_frame, int) or self.annotation_frame < 1:
            raise ValueError(f"annotation_frame must be a positive int, got {self.annotation_frame!r}")

    @classmethod
    def migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        """A dict without ``bound_fraction`` (saved before the world was graded, when every
        class was bound) loads with ``bound_fraction=1.0``, the world it described."""
        return d if "bound_fraction" in d else {**d, "bound_fraction": 1.0}

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def context_bound_classes(self) -> tuple[int, ...]:
        """The context-bound classes: ``0 .. round(bound_fraction * num_classes) - 1``."""
        return tuple(range(round(self.bound_fraction * self.num_classes)))

    def is_context_bound(self, k: int) -> bool:
        """Whether class ``k`` is context-bound (its band shows it with ``context_p``)."""
        self._check_class(k)
        return k < len(self.context_bound_classes)

    def class_context_p(self, k: int) -> float:
        """Probability that the band of a scene whose sound is class ``k`` shows ``k``'s own
        texture: ``context_p`` for a context-bound class, ``1/K`` for a free one."""
        return float(self.context_p) if self.is_context_bound(k) else 1.0 / self.num_classes

    def _check_class(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_classes:
            raise ValueError(f"class index must be an int in [0, {self.num_classes}), got {k!r}")
