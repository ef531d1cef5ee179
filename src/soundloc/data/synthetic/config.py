"""The knobs of the synthetic world (:class:`WorldConfig`) and its fixed tables."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soundloc.config import ConfigMixin, check_int, check_number, check_probability
from soundloc.data.types import ANNOTATION_FRAME, SAMPLE_RATE

#: Shapes the classes are drawn as (class k uses SHAPES[k]).
SHAPES = ("disk", "square", "triangle", "plus", "ring", "diamond", "cross", "H")
#: Largest number of classes the world supports (one shape per class).
MAX_CLASSES = len(SHAPES)
#: Scene kinds.
KINDS = ("object", "ambient", "offscreen")


#: The defaults of the fields whose default changed (or that did not exist) before the silent
#: objects stood beside the source: a saved world without ``n_ground_objects`` takes these.
BEFORE_GROUND_OBJECTS: dict[str, Any] = {
    "n_distractors": 3, "n_ground_objects": 0, "object_scale": (0.5, 0.7), "object_aspect": (0.8, 1.25),
    "paired_band": False, "bound_shift": 0,
}


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
        bound_fraction: fraction of the classes that are context-bound
            (``round(bound_fraction * K)`` of them, halves round to even; which ones:
            ``bound_shift``) show their own texture with probability ``context_p``; the others
            are free, probability ``1/K`` (a band uniform over the ``K`` classes;
            :meth:`class_context_p`). ``1.0`` is the world as it was before this field (every
            class bound): configs saved then lack the key, and :meth:`from_dict` loads them
            with ``1.0``.
        bound_shift: which classes are bound: ``bound_shift, bound_shift + 1, ...`` (mod ``K``),
            as many as ``bound_fraction`` says. Rotating it over seeds makes every class bound
            equally often, so that what the bound classes show is not a property of some classes.
        paired_band: draw the band's class from the scene's random stream in a fixed number of
            draws (the "other class" is drawn whether it is used or not), so that worlds that
            differ only in ``context_p`` show the same scenes, band texture aside, index by
            index. ``False`` is the draw order of worlds saved before this field.
        n_distractors: silent background objects per scene in the sky above the band (classes
            drawn independently of the sound's class).
        n_ground_objects: silent objects standing in the band beside the source, drawn from the
            source's own size and aspect ranges (classes drawn independently of the sound's
            class), placed where they do not overlap the source when there is room. They make
            the image hold several objects as large as the source, so that a map spread over
            the image cannot tell which one sounds.
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
    bound_shift: int = 0
    paired_band: bool = True
    n_distractors: int = 0
    n_ground_objects: int = 1
    object_scale: tuple[float, float] = (0.56, 0.64)
    object_aspect: tuple[float, float] = (0.45, 0.6)
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

        check_int(self, "num_classes", low=2)
        if self.num_classes > MAX_CLASSES:
            raise ValueError(f"WorldConfig.num_classes must be an int in [2, {MAX_CLASSES}], got {self.num_classes!r}")
        check_int(self, "image_size", low=16)
        check_int(self, "sample_rate", low=1000)
        check_int(self, "n_distractors", "n_ground_objects", "bound_shift", low=0)
        if not isinstance(self.paired_band, bool):
            raise ValueError(f"WorldConfig.paired_band must be a bool, got {self.paired_band!r}")
        check_int(self, "num_annotators", "annotation_frame")
        check_number(self, "clip_seconds", low_open=True)
        check_probability(self, "context_p", "offscreen_p", "ambient_p", "bound_fraction")
        if self.offscreen_p + self.ambient_p > 1.0:
            raise ValueError(f"offscreen_p + ambient_p must be <= 1, got {self.offscreen_p} + {self.ambient_p}")
        rng_pair("object_scale", 0.05, 1.0)
        rng_pair("object_aspect", 0.25, 4.0)
        rng_pair("distractor_scale", 0.05, 1.0)
        rng_pair("band_height", 0.05, 0.9)
        rng_pair("loudness", 0.0, 1.0)
        check_number(self, "max_rotation", high=44.999999)
        check_number(self, "pitch_jitter", "timbre_jitter", "noise_level", "pixel_noise", "annotator_jitter")

    @classmethod
    def migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        """A dict saved before a field existed loads as the world it described: without
        ``n_ground_objects`` it was saved before the ground objects came, when the defaults were
        :data:`BEFORE_GROUND_OBJECTS` (its missing keys take those); without ``bound_fraction``
        every class was bound (1.0)."""
        if "n_ground_objects" not in d:
            d = {**BEFORE_GROUND_OBJECTS, **d}
        return d if "bound_fraction" in d else {**d, "bound_fraction": 1.0}

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def context_bound_classes(self) -> tuple[int, ...]:
        """The context-bound classes, in increasing order: ``round(bound_fraction * K)`` of
        them, starting at ``bound_shift`` (mod ``K``)."""
        n, k = round(self.bound_fraction * self.num_classes), self.num_classes
        return tuple(sorted((self.bound_shift + j) % k for j in range(n)))

    def is_context_bound(self, k: int) -> bool:
        """Whether class ``k`` is context-bound (its band shows it with ``context_p``)."""
        self._check_class(k)
        return k in self.context_bound_classes

    def class_context_p(self, k: int) -> float:
        """Probability that the band of a scene whose sound is class ``k`` shows ``k``'s own
        texture: ``context_p`` for a context-bound class, ``1/K`` for a free one."""
        return float(self.context_p) if self.is_context_bound(k) else 1.0 / self.num_classes

    def _check_class(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_classes:
            raise ValueError(f"class index must be an int in [0, {self.num_classes}), got {k!r}")
