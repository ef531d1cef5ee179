"""A procedurally generated audio-visual world: the library's built-in data set.

No real data set can be downloaded on the machines this library is built on, and readers in
Colab should not need one, so every chapter and test runs on this world by default. It is also
the stage on which the book reproduces the paper's central observation (Senocak et al., CVPR
2018, Sec. 4-5, the "pigeon superstition"): a model trained only to match sounds with images
attends to whatever co-occurs with the sound -- the rails rather than the train -- and a little
supervision fixes it (see :mod:`soundloc.pigeon`).

The world ("ground band" design)
--------------------------------
There are ``K`` sound-source classes. Class ``k`` has

- a **sound signature** (:func:`class_signature`): a harmonic tone with a class-specific pitch,
  number of harmonics and spectral tilt, a pitch glide (chirp), an amplitude rhythm, and a
  band of noise; every clip jitters pitch, timbre (harmonic amplitudes), loudness, onset and
  phase, and adds background noise (22,050 Hz, ``clip_seconds`` long);
- a **visual object** whose *shape* is the class (disk, square, triangle, plus, ring, diamond,
  cross, "H"); its colour is random, its scale, aspect, rotation (pose) and position vary;
- a **context**: a textured ground band (stripes with a class-specific orientation, spacing and
  tint -- the "railway" of the "train").

A scene (:meth:`SyntheticWorld.scene`) has a sky with a random gradient, a ground band at the
bottom, ``n_distractors`` silent objects in the background (above the band) and, in front, the
sounding object standing in the band. The band shows the sounding class's texture with
probability ``context_p`` and a uniformly drawn *other* class's texture otherwise, so the
context predicts the sound's class with probability exactly ``context_p``. The silent objects'
classes are drawn uniformly from *all* ``K`` classes, independently of the sound's class: were
they always of another class (the literal reading of "distractors of other classes"), their
absence of the sounding class would itself be a cue to the sound, and a model could learn it.

The sounding object is large (``object_scale`` of the frame side, 0.5-0.7 by default), as the
sources of the real test set are: under the LVS median rule a softmax map keeps half the
pixels, so with a consensus region covering a fraction ``f`` of the frame the best reachable
cIoU is ``min(2f, 1/(2f))``; a source covering less than a quarter of the frame could never
reach cIoU 0.5 with any model. The silent objects are smaller (``distractor_scale``): they stand
farther back, behind the band. What an image shows is therefore this: the object's appearance
predicts its sound exactly, the context predicts it with probability ``context_p``, the silent
objects not at all. Nothing in the world says where to look; what a model attends to is learned.

As in the real data there are two other kinds of scene:

- **ambient** (probability ``ambient_p``): no sounding object; the sound is the context's own
  ambient noise (a slowly modulated noise band typical of the texture's class); the annotators
  tag it ``"ambient"`` and box the band;
- **off-screen** (probability ``offscreen_p``): the sounding class is heard but its object is
  not in view (the band still co-occurs with probability ``context_p``); such pairs have no
  annotation, like the Flickr-SoundNet pairs on which the annotators found no source.

Three simulated annotators each draw the true box with every edge moved by Gaussian noise
(``annotator_jitter`` times the box's side), in a 256×256 frame, and tag it ``"object"`` or
``"ambient"``; the consensus map and per-annotator scores work as on the real test set.

Everything is deterministic: scene ``i`` of ``SyntheticWorld(config, seed)`` is drawn from
``numpy.random.default_rng([seed, i])`` only. :class:`SyntheticDataset` serves scenes lazily (with
an in-memory cache) as the same :class:`~soundloc.data.types.Sample` objects that
:class:`~soundloc.data.dataset.AVDataset` yields, and :func:`write_world` writes them in the
prepared-data layout (:mod:`soundloc.data.layout`) so that ``AVDataset`` reads the very same
samples back.

Speed (``benchmarks/bench_synthetic.py``, one CPU thread, 64×64 images, 1 s clips): about 220
scenes per second generated, 5,700 cached samples per second served, 135 scenes per second
written to disk and 850 per second read back by ``AVDataset`` (0.5 s clips: 360 generated per
second).
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from soundloc.config import ConfigMixin
from soundloc.data.dataset import GridT, annotation_attention
from soundloc.data.types import ANNOTATION_FRAME, SAMPLE_RATE, Annotation, BoxT, Sample

#: Shapes the classes are drawn as (class k uses SHAPES[k]).
SHAPES = ("disk", "square", "triangle", "plus", "ring", "diamond", "cross", "H")
#: Largest number of classes the world supports (one shape per class).
MAX_CLASSES = len(SHAPES)
#: Scene kinds.
KINDS = ("object", "ambient", "offscreen")


@dataclass
class WorldConfig(ConfigMixin):
    """The knobs of the synthetic world (see the module docstring for what they mean).

    Attributes:
        num_classes: ``K`` sound-source classes (2..8).
        image_size: side of the square image in pixels.
        sample_rate: audio rate (22,050 Hz, SoundNet's).
        clip_seconds: length of each clip (short, for CPU models; the short SoundNet variant
            needs at least 0.42 s).
        context_p: probability that the ground band shows the sounding class's texture (the
            strength of the co-occurrence the superstition feeds on); otherwise the band shows
            one of the other classes, uniformly. At ``1/K`` the band carries no information
            about the sound; below ``1/K`` it is anti-correlated with it.
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

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))



# ---------------------------------------------------------------------------------------------
# Sound
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """The sound of one class: what every clip of the class shares (before jitter).

    ``f0`` fundamental (Hz); ``n_harmonics`` and ``tilt`` (amplitude of harmonic ``h`` is
    ``h ** -tilt``); ``chirp`` pitch glide in octaves per second; ``rhythm`` amplitude-modulation
    rate (Hz) and ``duty`` the fraction of each period that sounds; ``noise_band`` centre and
    relative width of a band of noise mixed in with gain ``noise_gain``.
    """

    f0: float
    n_harmonics: int
    tilt: float
    chirp: float
    rhythm: float
    duty: float
    noise_band: tuple[float, float]
    noise_gain: float


def class_signature(k: int, num_classes: int) -> Signature:
    """The sound signature of class ``k`` (a fixed design table, the same in every world).

    Pitches are spread over three octaves (150 Hz to 1.2 kHz, log-spaced), harmonics and tilt
    alternate, glides rise or fall, rhythms go from 2 to 9 Hz, and each class has a noise band
    between 1.5 and 7 kHz: any two classes differ in several cues at once.
    """
    if not 0 <= k < num_classes:
        raise ValueError(f"class index {k} out of range for {num_classes} classes")
    frac = k / max(1, num_classes - 1)
    return Signature(
        f0=150.0 * 2.0 ** (3.0 * frac),
        n_harmonics=(2, 6, 4, 8, 3, 7, 5, 1)[k % 8],
        tilt=(1.5, 0.7, 1.0, 0.5, 1.2, 0.8, 0.6, 1.0)[k % 8],
        chirp=(0.0, 0.8, -0.8, 0.4, -0.4, 1.2, -1.2, 0.0)[k % 8],
        rhythm=2.0 + 7.0 * ((k * 3) % num_classes) / max(1, num_classes - 1),
        duty=(0.6, 0.4, 0.8, 0.5, 0.7, 0.3, 0.9, 0.5)[k % 8],
        noise_band=(1500.0 * 2.0 ** (2.2 * ((k * 5) % num_classes) / max(1, num_classes - 1)), 0.3),
        noise_gain=(0.15, 0.4, 0.25, 0.1, 0.35, 0.2, 0.3, 0.45)[k % 8],
    )


def _band_noise(rng: np.random.Generator, n: int, rate: int, centre: float, rel_width: float) -> np.ndarray:
    """White noise band-passed in the frequency domain around ``centre`` (unit RMS)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    width = max(centre * rel_width, 20.0)
    spec *= np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    out = np.fft.irfft(spec, n)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def render_sound(
    rng: np.random.Generator, signature: Signature, config: WorldConfig
) -> np.ndarray:
    """One jittered clip of a class signature (float32 ``[T]``, peak about ``loudness``)."""
    rate, n = config.sample_rate, config.clip_samples
    t = np.arange(n) / rate
    pitch = signature.f0 * math.exp(rng.normal(0.0, config.pitch_jitter))
    glide = signature.chirp * (1.0 + rng.normal(0.0, 0.1))
    # instantaneous frequency f(t) = pitch * 2 ** (glide * (t - T/2)); phase is its integral
    centred = t - t[-1] / 2 if n > 1 else t
    if abs(glide) > 1e-9:
        k = glide * math.log(2.0)
        phase_base = pitch * (np.exp(k * centred) - math.exp(k * centred[0])) / k
    else:
        phase_base = pitch * (t - t[0])
    tone = np.zeros(n)
    for h in range(1, signature.n_harmonics + 1):
        if pitch * h * 2.0 ** (abs(glide) * t[-1]) >= rate / 2:
            break
        gain = h ** (-signature.tilt) * math.exp(rng.normal(0.0, config.timbre_jitter))
        tone += gain * np.sin(2 * np.pi * h * phase_base + rng.uniform(0, 2 * np.pi))
    tone /= np.max(np.abs(tone)) + 1e-12
    noise = _band_noise(rng, n, rate, signature.noise_band[0] * math.exp(rng.normal(0.0, 0.05)), signature.noise_band[1])
    src = tone + signature.noise_gain * noise * math.exp(rng.normal(0.0, config.timbre_jitter))
    # rhythm: a smoothed on/off gate with a random phase
    rhythm = signature.rhythm * math.exp(rng.normal(0.0, 0.05))
    cycle = (t * rhythm + rng.uniform()) % 1.0
    gate = np.clip((signature.duty - cycle) * 40.0, 0.0, 1.0) * np.clip(cycle * 40.0, 0.0, 1.0)
    src = src * (0.15 + 0.85 * gate)
    src /= np.max(np.abs(src)) + 1e-12
    loud = rng.uniform(*config.loudness)
    return (loud * src).astype(np.float32)


def render_ambient(rng: np.random.Generator, context_class: int, config: WorldConfig) -> np.ndarray:
    """The ambient sound of a context (the band's class): a slowly swelling low noise band."""
    rate, n = config.sample_rate, config.clip_samples
    centre = 120.0 * 2.0 ** (2.5 * context_class / max(1, config.num_classes - 1))
    centre *= math.exp(rng.normal(0.0, config.pitch_jitter))
    noise = _band_noise(rng, n, rate, centre, 0.5)
    t = np.arange(n) / rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
    src = noise * swell
    src /= np.max(np.abs(src)) + 1e-12
    return (rng.uniform(*config.loudness) * src).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Image
# ---------------------------------------------------------------------------------------------


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean silhouette of ``shape`` in normalised coordinates ``u, v`` in [-1, 1] (v down)."""
    au, av = np.abs(u), np.abs(v)
    if shape == "disk":
        return u**2 + v**2 <= 1.0
    if shape == "square":
        return np.maximum(au, av) <= 0.85
    if shape == "triangle":  # apex up
        return (v <= 0.95) & (v >= -0.95) & (au <= (v + 0.95) / 1.9 * 0.95)
    if shape == "plus":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if shape == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1.0) & (r2 >= 0.5**2)
    if shape == "diamond":
        return au + av <= 1.0
    if shape == "cross":  # a plus turned by 45 degrees
        a, b = np.abs(u + v) / math.sqrt(2), np.abs(u - v) / math.sqrt(2)
        return ((a <= 0.22) | (b <= 0.22)) & (np.maximum(au, av) <= 0.95)
    if shape == "H":
        return ((au >= 0.5) & (au <= 0.95) & (av <= 0.95)) | ((av <= 0.22) & (au <= 0.95))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _context_texture(k: int, num_classes: int, ys: np.ndarray, xs: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Texture of context class ``k`` on pixel coordinates: ``[h, w, 3]`` float.

    Stripes with a class-specific orientation (spread over 180 degrees), spacing and tint;
    the phase, contrast and brightness vary per scene.
    """
    angle = math.pi * k / num_classes + rng.normal(0.0, 0.05)
    period = size * (0.09 + 0.05 * (k % 3)) * math.exp(rng.normal(0.0, 0.08))
    proj = xs * math.cos(angle) + ys * math.sin(angle)
    wave = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * proj / period + rng.uniform(0, 2 * np.pi)))
    hue = (k / num_classes + 0.5 / num_classes + rng.normal(0.0, 0.02)) % 1.0
    light = _hsv_to_rgb(hue, 0.35 + 0.1 * rng.uniform(), 0.75 + 0.15 * rng.uniform())
    dark = _hsv_to_rgb(hue, 0.6 + 0.2 * rng.uniform(), 0.3 + 0.15 * rng.uniform())
    return dark[None, None, :] + wave[..., None] * (light - dark)[None, None, :]


def _draw_object(
    img: np.ndarray, shape: str, box: tuple[float, float, float, float], angle: float, colour: np.ndarray
) -> np.ndarray:
    """Paint a shaded ``shape`` filling ``box`` (x1, y1, x2, y2 in pixels) rotated by ``angle``.

    Returns the object's boolean silhouette on the image.
    """
    size = img.shape[0]
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(angle), math.sin(angle)
    u = (c * dx + s * dy) / hw
    v = (-s * dx + c * dy) / hh
    mask = shape_mask(shape, u, v)
    shade = (0.8 + 0.2 * np.clip(1.0 - (v + 1.0) / 2.0, 0.0, 1.0))[..., None]
    img[mask] = (colour[None, None, :] * shade)[mask]
    return mask


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """One generated image/sound pair with everything known about it.

    Attributes:
        index: the scene's index in its world.
        id: its identifier (:meth:`SyntheticWorld.scene_id`).
        image: ``[3, H, W]`` float32 in [0, 1].
        waveform: ``[T]`` float32 at the world's sample rate.
        annotation: three annotators' boxes (256×256 frame) and tags, ``None`` off-screen.
        context_mask: ``[H, W]`` float32 in {0, 1}: the ground band outside the source's box.
        object_mask: ``[H, W]`` float32 in {0, 1}: the sounding object's true box (zeros when
            no object sounds in view).
        label: the sound's class (for ambient scenes: the context's class).
        context_label: the class whose texture the band shows.
        kind: ``"object"``, ``"ambient"`` or ``"offscreen"``.
        box: the source's true box ``(x1, y1, x2, y2)`` in image pixels (half-open), or
            ``None``; for ambient scenes the band.
        distractor_labels: classes of the silent objects.
        distractor_boxes: their boxes in image pixels.
    """

    index: int
    id: str
    image: torch.Tensor
    waveform: torch.Tensor
    annotation: Annotation | None
    context_mask: torch.Tensor
    object_mask: torch.Tensor
    label: int
    context_label: int
    kind: str
    box: BoxT | None
    distractor_labels: tuple[int, ...] = ()
    distractor_boxes: tuple[BoxT, ...] = ()

    @property
    def visible(self) -> bool:
        """The sounding object is in view."""
        return self.kind == "object"

    @property
    def metadata(self) -> dict[str, Any]:
        """Plain-type description (for JSON)."""
        return {
            "id": self.id, "index": self.index, "kind": self.kind, "label": self.label,
            "context_label": self.context_label, "visible": self.visible, "ambient": self.kind == "ambient",
            "box": list(self.box) if self.box else None,
            "distractor_labels": list(self.distractor_labels),
            "distractor_boxes": [list(b) for b in self.distractor_boxes],
        }


def _int_box(box: tuple[float, float, float, float], size: int) -> BoxT:
    x1, y1, x2, y2 = box
    return (max(0, int(round(x1))), max(0, int(round(y1))), min(size, int(round(x2))), min(size, int(round(y2))))


def _rect_mask(box: BoxT, size: int) -> np.ndarray:
    m = np.zeros((size, size), dtype=np.float32)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = 1.0
    return m


class SyntheticWorld:
    """A seeded synthetic world: ``scene(i)`` is a deterministic function of ``(seed, i)``.

    Args:
        config: the world's knobs (:class:`WorldConfig`; defaults if ``None``).
        seed: the world's seed (non-negative int).
    """

    def __init__(self, config: WorldConfig | None = None, seed: int = 0) -> None:
        if config is None:
            config = WorldConfig()
        if not isinstance(config, WorldConfig):
            raise TypeError(f"config must be a WorldConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.config = config
        self.seed = seed
        self.signatures = [class_signature(k, config.num_classes) for k in range(config.num_classes)]

    def __repr__(self) -> str:
        return f"SyntheticWorld(seed={self.seed}, K={self.config.num_classes}, p={self.config.context_p})"

    @staticmethod
    def scene_id(index: int) -> str:
        """The id of scene ``index`` (``"syn000042"``)."""
        return f"syn{int(index):06d}"

    @staticmethod
    def index_of(scene_id: str) -> int:
        """Inverse of :meth:`scene_id`."""
        if not (isinstance(scene_id, str) and scene_id.startswith("syn") and scene_id[3:].isdigit()):
            raise ValueError(f"not a synthetic scene id: {scene_id!r}")
        return int(scene_id[3:])

    def scene_kind(self, index: int) -> str:
        """The kind of scene ``index`` without rendering it (the scene's first random draw)."""
        return self._kind(np.random.default_rng([self.seed, int(index)]).uniform())

    def _kind(self, u: float) -> str:
        cfg = self.config
        if u < cfg.offscreen_p:
            return "offscreen"
        return "ambient" if u < cfg.offscreen_p + cfg.ambient_p else "object"

    def scene(self, index: int) -> Scene:
        """Generate scene ``index`` (deterministic in ``(seed, index)``)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}")
        index = int(index)
        cfg = self.config
        size, K = cfg.image_size, cfg.num_classes
        rng = np.random.default_rng([self.seed, index])
        # --- what is heard, what the band shows
        kind = self._kind(rng.uniform())
        label = int(rng.integers(K))
        if kind == "ambient":
            context_label = label  # the band itself is the source
        elif rng.uniform() < cfg.context_p:
            context_label = label
        else:
            context_label = int((label + 1 + rng.integers(K - 1)) % K)
        # --- sky
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        top = _hsv_to_rgb(rng.uniform(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.95))
        bottom = _hsv_to_rgb(rng.uniform(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.95))
        g = (ys / size)[..., None]
        img = (1 - g) * top[None, None, :] + g * bottom[None, None, :]
        # --- ground band (the context)
        band_h = int(round(size * rng.uniform(*cfg.band_height)))
        band_top = size - band_h
        img[band_top:] = _context_texture(context_label, K, ys[band_top:], xs[band_top:], rng, size)
        # --- the sounding object's box (stands in the band)
        box_f: tuple[float, float, float, float] | None = None
        if kind != "ambient":
            side = size * rng.uniform(*cfg.object_scale)
            aspect = rng.uniform(*cfg.object_aspect)
            w, h = min(side * math.sqrt(aspect), size), min(side / math.sqrt(aspect), size)
            bottom_y = rng.uniform(band_top + 0.4 * band_h, size)
            bottom_y = max(bottom_y, h)
            x1 = rng.uniform(0, size - w)
            box_f = (x1, bottom_y - h, x1 + w, bottom_y)
        # --- silent objects in the background, above the band, avoiding the source's box
        d_labels: list[int] = []
        d_boxes: list[BoxT] = []
        for _ in range(cfg.n_distractors):
            dk = int(rng.integers(K))
            side = size * rng.uniform(*cfg.distractor_scale)
            aspect = rng.uniform(*cfg.object_aspect)
            w, h = min(side * math.sqrt(aspect), size), min(side / math.sqrt(aspect), size)
            best, best_overlap = None, math.inf
            for _try in range(8):
                x = rng.uniform(0, size - w)
                y = rng.uniform(0, max(0.0, band_top - 0.5 * h))
                cand = (x, y, x + w, y + h)
                overlap = 0.0
                for other in ([box_f] if box_f else []) + [tuple(map(float, b)) for b in d_boxes]:
                    ix = max(0.0, min(cand[2], other[2]) - max(cand[0], other[0]))
                    iy = max(0.0, min(cand[3], other[3]) - max(cand[1], other[1]))
                    overlap += ix * iy
                if overlap < best_overlap:
                    best, best_overlap = cand, overlap
                if overlap == 0.0:
                    break
            assert best is not None
            colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0))
            _draw_object(img, SHAPES[dk], best, math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation)), colour)
            d_labels.append(dk)
            d_boxes.append(_int_box(best, size))
        # --- the sounding object, in front
        box: BoxT | None = None
        if box_f is not None:
            colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0))
            angle = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
            if kind == "object":
                _draw_object(img, SHAPES[label], box_f, angle, colour)
                box = _int_box(box_f, size)
            # off-screen: the object is out of view -- nothing is drawn (the draws above keep
            # the random stream aligned with an on-screen scene of the same index)
        img = img + rng.normal(0.0, cfg.pixel_noise, img.shape)
        image = torch.from_numpy(np.clip(img, 0.0, 1.0).astype(np.float32).transpose(2, 0, 1).copy())
        # --- masks
        band = np.zeros((size, size), dtype=np.float32)
        band[band_top:] = 1.0
        obj = _rect_mask(box, size) if box is not None else np.zeros((size, size), dtype=np.float32)
        context = band * (1.0 - obj)
        # --- sound
        if kind == "ambient":
            src = render_ambient(rng, context_label, cfg)
        else:
            src = render_sound(rng, self.signatures[label], cfg)
        wav = src + rng.normal(0.0, cfg.noise_level, src.shape).astype(np.float32)
        waveform = torch.from_numpy(np.clip(wav, -1.0, 1.0).astype(np.float32))
        # --- annotators
        annotation = None
        src_box = box if kind == "object" else ((0, band_top, size, size) if kind == "ambient" else None)
        if src_box is not None:
            annotation = self._annotate(rng, src_box, "object" if kind == "object" else "ambient")
        return Scene(
            index=index, id=self.scene_id(index), image=image, waveform=waveform, annotation=annotation,
            context_mask=torch.from_numpy(context), object_mask=torch.from_numpy(obj), label=label,
            context_label=context_label, kind=kind, box=src_box, distractor_labels=tuple(d_labels),
            distractor_boxes=tuple(d_boxes),
        )

    def _annotate(self, rng: np.random.Generator, box: BoxT, tag: str) -> Annotation:
        """Three jittered boxes around ``box`` (image pixels), in the annotation frame."""
        cfg = self.config
        frame = cfg.annotation_frame
        scale = frame / cfg.image_size
        x1, y1, x2, y2 = (v * scale for v in box)
        w, h = x2 - x1, y2 - y1
        boxes = []
        for _ in range(cfg.num_annotators):
            jx = rng.normal(0.0, cfg.annotator_jitter * w, 2)
            jy = rng.normal(0.0, cfg.annotator_jitter * h, 2)
            bx1 = int(np.clip(round(x1 + jx[0]), 0, frame - 1))
            by1 = int(np.clip(round(y1 + jy[0]), 0, frame - 1))
            bx2 = int(np.clip(round(x2 + jx[1]), bx1 + 1, frame))
            by2 = int(np.clip(round(y2 + jy[1]), by1 + 1, frame))
            boxes.append(((bx1, by1, bx2, by2),))
        return Annotation(boxes=tuple(boxes), tags=(tag,) * cfg.num_annotators, frame_size=frame)


# ---------------------------------------------------------------------------------------------
# Splits, the in-memory dataset, writing to disk
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldSplits:
    """Which scene indices play which role (the same for the in-memory and on-disk data).

    ``train``: the first ``n - n_test`` indices (every kind of scene, as unlabelled video);
    ``test``: the annotated scenes among the last ``n_test`` indices (like the real test list,
    only pairs with boxes); ``labelled``: the first ``n_labelled`` annotated training scenes
    (the supervised pool).
    """

    train: tuple[int, ...]
    test: tuple[int, ...]
    labelled: tuple[int, ...]


def world_splits(world: SyntheticWorld, n: int, n_test: int, n_labelled: int) -> WorldSplits:
    """Split scenes ``0 .. n-1`` (see :class:`WorldSplits`); kinds are read from the scenes' draws."""
    if n < 1 or not 0 <= n_test < n:
        raise ValueError(f"need n >= 1 and 0 <= n_test < n, got n={n}, n_test={n_test}")
    if n_labelled < 0:
        raise ValueError(f"n_labelled must be >= 0, got {n_labelled}")
    train = tuple(range(n - n_test))
    annotated = [i for i in range(n) if world.scene_kind(i) != "offscreen"] if n else []
    ann_set = set(annotated)
    test = tuple(i for i in range(n - n_test, n) if i in ann_set)
    labelled = tuple(i for i in train if i in ann_set)[:n_labelled]
    if len(labelled) < n_labelled:
        raise ValueError(f"only {len(labelled)} annotated training scenes, {n_labelled} labelled requested")
    return WorldSplits(train=train, test=test, labelled=labelled)


_TENSOR_FIELDS = ("image", "waveform", "context_mask", "object_mask")


def _render_chunk(config: dict[str, Any], seed: int, indices: list[int]) -> list[tuple[Any, ...]]:
    """Worker of :func:`render_scenes`: scenes as NumPy arrays (plain pickles between processes)."""
    torch.set_num_threads(1)  # one process per core
    world = SyntheticWorld(WorldConfig.from_dict(config), seed=seed)
    out = []
    for i in indices:
        sc = world.scene(i)
        arrays = tuple(getattr(sc, f).numpy() for f in _TENSOR_FIELDS)
        meta = dataclasses.replace(sc, **{f: None for f in _TENSOR_FIELDS})
        out.append((meta, arrays))
    return out


def render_scenes(
    world: SyntheticWorld, indices: Sequence[int], workers: int = 0, chunk: int = 64
) -> Iterable[Scene]:
    """Scenes ``indices`` of ``world`` in order, rendered by ``workers`` processes (0: here).

    Every scene depends only on ``(seed, index)``, so the result is the same for any number of
    workers; processes only save time on machines with many cores (the GPU-sized pigeon run
    renders 20,000 scenes).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int >= 0, got {workers!r}")
    indices = [int(i) for i in indices]
    if workers == 0 or len(indices) <= chunk:
        for i in indices:
            yield world.scene(i)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [indices[k:k + chunk] for k in range(0, len(indices), chunk)]
    cfg = world.config.to_dict()
    ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for part in pool.map(_render_chunk, [cfg] * len(chunks), [world.seed] * len(chunks), chunks):
            for meta, arrays in part:
                yield dataclasses.replace(meta, **{f: torch.from_numpy(a) for f, a in zip(_TENSOR_FIELDS, arrays)})


class SyntheticDataset(Dataset[Sample]):
    """Scenes of a :class:`SyntheticWorld` as :class:`Sample` objects, generated lazily.

    The knobs are those of :class:`~soundloc.data.dataset.AVDataset`, and a sample equals the
    one ``AVDataset`` reads from the folder :func:`write_world` makes (images are quantised to
    8 bits here as in the PNG; audio differs by the 16-bit WAV quantisation only), with extras
    ``"context_mask"``, ``"object_mask"`` (``[H, W]`` float) and ``"label"``,
    ``"context_label"``, ``"kind"`` (index into :data:`KINDS`), ``"visible"`` (0-d long).

    Args:
        world: the world.
        indices: which scenes: an int ``n`` (scenes ``0..n-1``) or a sequence of indices.
        grid: the model's attention grid for ``gt_attention`` (``None``: no ground truth).
        annotator: ``"random"`` (one annotator per sample, redrawn each epoch), ``"consensus"``
            or an annotator index (see :func:`~soundloc.data.dataset.annotation_attention`).
        labelled: ``None`` (every annotated scene gives ground truth), ``False`` (none: the
            unsupervised setting), or a collection of ids / indices (the labelled subset).
        seed: seeds the annotator draws (with :meth:`set_epoch`), as in ``AVDataset``.
        cache: keep generated scenes in memory (images as uint8, about 60 kB per 1 s scene).
    """

    def __init__(
        self,
        world: SyntheticWorld,
        indices: int | Sequence[int] = 1000,
        grid: int | GridT | None = None,
        annotator: int | str = "random",
        labelled: Iterable[str | int] | bool | None = None,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if not isinstance(world, SyntheticWorld):
            raise TypeError(f"world must be a SyntheticWorld, got {type(world).__name__}")
        self.world = world
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            if indices < 0:
                raise ValueError(f"indices must be a count >= 0 or a sequence of indices, got {indices}")
            self.indices = list(range(int(indices)))
        else:
            self.indices = [int(i) for i in indices]
            if any(i < 0 for i in self.indices):
                raise ValueError("indices must be non-negative")
        self.grid: GridT | None = (grid, grid) if isinstance(grid, int) else (tuple(grid) if grid else None)  # type: ignore[assignment]
        if not (annotator in ("random", "consensus") or (isinstance(annotator, int) and annotator >= 0)):
            raise ValueError(f"annotator must be 'random', 'consensus' or an index, got {annotator!r}")
        self.annotator = annotator
        self._labelled_spec = labelled
        if labelled is False:
            self._labelled_idx: set[int] | None = set()
        elif labelled is None or labelled is True:
            self._labelled_idx = None  # every annotated scene
        else:
            self._labelled_idx = {SyntheticWorld.index_of(x) if isinstance(x, str) else int(x) for x in labelled}
        self.seed = int(seed)
        self.epoch = 0
        self.cache = bool(cache)
        self._cache: dict[int, tuple[np.ndarray, torch.Tensor, Scene]] = {}
        self.image_size = world.config.image_size
        self.sample_rate = world.config.sample_rate

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def ids(self) -> list[str]:
        return [SyntheticWorld.scene_id(i) for i in self.indices]

    def set_epoch(self, epoch: int) -> None:
        """Change the random annotator draws (call once per epoch), as ``AVDataset.set_epoch``."""
        self.epoch = int(epoch)

    def _rng(self, position: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, position])

    def scene(self, position: int) -> Scene:
        """The :class:`Scene` at ``position`` (from the cache when present)."""
        index = self.indices[position]
        hit = self._cache.get(index)
        if hit is not None:
            img8, wav, meta = hit
            return dataclasses.replace(meta, image=torch.from_numpy(img8).float().div_(255.0), waveform=wav)
        sc = self.world.scene(index)
        img8 = self._store(sc)[0]
        return dataclasses.replace(sc, image=torch.from_numpy(img8).float().div_(255.0))

    def prefetch(self, workers: int = 0, progress: bool = False, desc: str = "rendering scenes") -> "SyntheticDataset":
        """Render every scene not yet cached (with ``workers`` processes; see
        :func:`render_scenes`) and keep it in the cache shared with :meth:`subset` datasets."""
        if not self.cache:
            raise ValueError("prefetch needs a dataset built with cache=True")
        from tqdm.auto import tqdm

        todo = [i for i in dict.fromkeys(self.indices) if i not in self._cache]
        for sc in tqdm(render_scenes(self.world, todo, workers), total=len(todo), desc=desc,
                       disable=not progress, leave=False):
            self._store(sc)
        return self

    def _store(self, sc: Scene) -> tuple[np.ndarray, torch.Tensor, Scene]:
        # quantise the image to 8 bits as a written PNG is, so that the in-memory and on-disk
        # samples agree exactly; audio is kept in float (16-bit PCM differs by < 2**-15)
        img8 = (sc.image.numpy() * 255.0 + 0.5).astype(np.uint8)
        entry = (img8, sc.waveform, dataclasses.replace(sc, image=torch.empty(0), waveform=torch.empty(0)))
        if self.cache:
            self._cache[sc.index] = entry
        return entry

    def is_labelled(self, index: int) -> bool:
        """Whether scene ``index`` may give ground truth (before checking it has an annotation)."""
        return self._labelled_idx is None or index in self._labelled_idx

    def labelled_indices(self) -> list[int]:
        """Positions whose samples carry ``gt_attention`` (annotated, labelled, and a grid set);
        found without rendering (:class:`~soundloc.train.Trainer` asks for them)."""
        if self.grid is None:
            return []
        return [
            k for k, i in enumerate(self.indices)
            if self.is_labelled(i) and self.world.scene_kind(i) != "offscreen"
        ]

    @property
    def labelled(self) -> set[str]:
        """Ids of the annotated pairs allowed to give ground truth (as ``AVDataset.labelled``)."""
        return {
            SyntheticWorld.scene_id(i) for i in self.indices
            if self.is_labelled(i) and self.world.scene_kind(i) != "offscreen"
        }

    def __getitem__(self, position: int) -> Sample:
        if not 0 <= position < len(self.indices):
            raise IndexError(f"index {position} out of range for {len(self.indices)} samples")
        sc = self.scene(position)
        gt = None
        if sc.annotation is not None and self.grid is not None and self.is_labelled(sc.index):
            gt = annotation_attention(sc.annotation, self.grid, self.annotator, rng=self._rng(position))
        return Sample(
            id=sc.id, image=sc.image, waveform=sc.waveform, annotation=sc.annotation, gt_attention=gt,
            extras={
                "context_mask": sc.context_mask, "object_mask": sc.object_mask,
                "label": torch.tensor(sc.label, dtype=torch.long),
                "context_label": torch.tensor(sc.context_label, dtype=torch.long),
                "kind": torch.tensor(KINDS.index(sc.kind), dtype=torch.long),
                "visible": torch.tensor(int(sc.visible), dtype=torch.long),
            },
        )

    def subset(self, indices: Sequence[int], **overrides: Any) -> "SyntheticDataset":
        """A dataset over other scene indices of the same world sharing this one's cache."""
        kw: dict[str, Any] = dict(grid=self.grid, annotator=self.annotator, labelled=self._labelled_spec, seed=self.seed, cache=self.cache)
        kw.update(overrides)
        out = SyntheticDataset(self.world, indices, **kw)
        out._cache = self._cache
        return out


def write_world(
    world: SyntheticWorld,
    root: str | os.PathLike[str],
    n: int,
    n_test: int = 0,
    n_labelled: int = 0,
    progress: bool = True,
) -> Path:
    """Write scenes ``0..n-1`` of ``world`` in the prepared-data layout under ``root``.

    Files (see :mod:`soundloc.data.layout`): ``frames/<id>.png``, ``audio/<id>.wav`` (16-bit),
    ``masks/<id>_context.png`` and ``masks/<id>_object.png``, ``index.csv`` (columns id, frame,
    audio, context_mask, object_mask, label, context_label, kind, visible), ``annotations.json``
    (every annotated scene; the world's config and seed stored beside the items),
    ``splits/train.txt``, ``splits/test.txt`` and ``splits/labelled.txt`` (:func:`world_splits`).
    Every file is written atomically; ``index.csv`` last, so a folder with an index is complete.
    """
    from tqdm import tqdm

    from soundloc.data import io
    from soundloc.data.layout import split_path, write_annotations, write_id_list, write_index

    splits = world_splits(world, n, n_test, n_labelled)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    annotations: dict[str, Annotation] = {}
    kinds = {k: i for i, k in enumerate(KINDS)}
    for i in tqdm(range(n), desc="writing synthetic world", disable=not progress, leave=False):
        sc = world.scene(i)
        frame, audio = f"frames/{sc.id}.png", f"audio/{sc.id}.wav"
        cmask, omask = f"masks/{sc.id}_context.png", f"masks/{sc.id}_object.png"
        io.write_image(root / frame, sc.image)
        io.write_wav(root / audio, sc.waveform, world.config.sample_rate)
        io.write_image(root / cmask, (sc.context_mask.numpy() * 255).astype(np.uint8))
        io.write_image(root / omask, (sc.object_mask.numpy() * 255).astype(np.uint8))
        rows.append({
            "id": sc.id, "frame": frame, "audio": audio, "context_mask": cmask, "object_mask": omask,
            "label": sc.label, "context_label": sc.context_label, "kind": kinds[sc.kind], "visible": int(sc.visible),
        })
        if sc.annotation is not None:
            annotations[sc.id] = sc.annotation
    write_annotations(
        root / "annotations.json", annotations, source="soundloc synthetic world", seed=world.seed,
        world=world.config.to_dict(), kinds={v: k for k, v in kinds.items()},
    )
    for name, idx in (("train", splits.train), ("test", splits.test), ("labelled", splits.labelled)):
        write_id_list(split_path(root, name), [SyntheticWorld.scene_id(i) for i in idx])
    write_index(root, rows)
    return root


__all__ = [
    "KINDS",
    "MAX_CLASSES",
    "SHAPES",
    "Scene",
    "Signature",
    "SyntheticDataset",
    "SyntheticWorld",
    "WorldConfig",
    "WorldSplits",
    "class_signature",
    "render_ambient",
    "render_scenes",
    "render_sound",
    "shape_mask",
    "world_splits",
    "write_world",
]
