"""Scenes and the seeded world that draws them; splits; rendering with worker processes."""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from soundloc.data.synthetic.config import SHAPES, WorldConfig
from soundloc.data.synthetic.drawing import _context_texture, _draw_object, _hsv_to_rgb, _int_box, _rect_mask
from soundloc.data.synthetic.sound import class_signature, render_ambient, render_sound
from soundloc.data.types import Annotation, BoxT


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
        cfg = self.config
        return f"SyntheticWorld(seed={self.seed}, K={cfg.num_classes}, p={cfg.context_p}, bound={cfg.bound_fraction})"

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
        """Generate scene ``index`` (deterministic in ``(seed, index)``): what is heard and what
        the band shows, the sky and the band, the source's box, the silent objects on the ground
        and in the sky, the source drawn in front, pixel noise, the sound and the annotators'
        boxes, in that order of random draws."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}")
        index = int(index)
        cfg = self.config
        size = cfg.image_size
        rng = np.random.default_rng([self.seed, index])
        kind = self._kind(rng.uniform())
        label = int(rng.integers(cfg.num_classes))
        context_label = self._band_class(rng, kind, label)
        img, band_top = self._backdrop(rng, context_label)
        box_f = None if kind == "ambient" else self._source_box(rng, band_top)
        d_labels, d_boxes = self._ground_objects(rng, img, band_top, box_f)
        self._sky_objects(rng, img, band_top, box_f, d_labels, d_boxes)
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
        band = np.zeros((size, size), dtype=np.float32)
        band[band_top:] = 1.0
        obj = _rect_mask(box, size) if box is not None else np.zeros((size, size), dtype=np.float32)
        context = band * (1.0 - obj)
        for b in d_boxes[:cfg.n_ground_objects]:  # the band is what the silent objects leave visible
            context = context * (1.0 - _rect_mask(b, size))
        if kind == "ambient":
            src = render_ambient(rng, context_label, cfg)
        else:
            src = render_sound(rng, self.signatures[label], cfg)
        wav = src + rng.normal(0.0, cfg.noise_level, src.shape).astype(np.float32)
        waveform = torch.from_numpy(np.clip(wav, -1.0, 1.0).astype(np.float32))
        src_box = box if kind == "object" else ((0, band_top, size, size) if kind == "ambient" else None)
        annotation = None if src_box is None else self._annotate(rng, src_box, "object" if kind == "object" else "ambient")
        return Scene(
            index=index, id=self.scene_id(index), image=image, waveform=waveform, annotation=annotation,
            context_mask=torch.from_numpy(context), object_mask=torch.from_numpy(obj), label=label,
            context_label=context_label, kind=kind, box=src_box, distractor_labels=tuple(d_labels),
            distractor_boxes=tuple(d_boxes),
        )

    def _backdrop(self, rng: np.random.Generator, context_label: int) -> tuple[np.ndarray, int]:
        """The sky (a vertical gradient between two pale colours) and the ground band below it
        showing ``context_label``'s texture: ``(image [H, W, 3], the band's first row)``."""
        cfg = self.config
        size = cfg.image_size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        top = _hsv_to_rgb(rng.uniform(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.95))
        bottom = _hsv_to_rgb(rng.uniform(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.95))
        g = (ys / size)[..., None]
        img = (1 - g) * top[None, None, :] + g * bottom[None, None, :]
        band_h = int(round(size * rng.uniform(*cfg.band_height)))
        band_top = size - band_h
        img[band_top:] = _context_texture(context_label, cfg.num_classes, ys[band_top:], xs[band_top:], rng, size)
        return img, band_top

    def _standing_box(self, rng: np.random.Generator, band_top: int) -> tuple[float, float, float]:
        """Width, height and bottom edge of an object standing in the band, drawn from the
        source's size and aspect ranges."""
        cfg = self.config
        size = cfg.image_size
        side = size * rng.uniform(*cfg.object_scale)
        aspect = rng.uniform(*cfg.object_aspect)
        w, h = min(side * math.sqrt(aspect), size), min(side / math.sqrt(aspect), size)
        bottom_y = max(rng.uniform(band_top + 0.4 * (size - band_top), size), h)
        return w, h, bottom_y

    def _source_box(self, rng: np.random.Generator, band_top: int) -> tuple[float, float, float, float]:
        """The sounding object's box (it stands in the band), in float pixels."""
        w, h, bottom_y = self._standing_box(rng, band_top)
        x1 = rng.uniform(0, self.config.image_size - w)
        return (x1, bottom_y - h, x1 + w, bottom_y)

    def _ground_objects(self, rng: np.random.Generator, img: np.ndarray, band_top: int,
                        box_f: tuple[float, float, float, float] | None) -> tuple[list[int], list[BoxT]]:
        """Draw ``n_ground_objects`` silent objects standing in the band beside the source, as
        large as it; returns their classes and boxes."""
        cfg = self.config
        size = cfg.image_size
        labels: list[int] = []
        boxes: list[BoxT] = []
        for _ in range(cfg.n_ground_objects):
            dk = int(rng.integers(cfg.num_classes))
            w, h, bottom_y = self._standing_box(rng, band_top)
            taken = ([box_f] if box_f else []) + [tuple(map(float, b)) for b in boxes]
            x = _free_x(rng.uniform(), w, size, [(b[0], b[2]) for b in taken])
            where = (x, bottom_y - h, x + w, bottom_y)
            colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0))
            _draw_object(img, SHAPES[dk], where, math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation)), colour)
            labels.append(dk)
            boxes.append(_int_box(where, size))
        return labels, boxes

    def _sky_objects(self, rng: np.random.Generator, img: np.ndarray, band_top: int,
                     box_f: tuple[float, float, float, float] | None, labels: list[int], boxes: list[BoxT]) -> None:
        """Draw ``n_distractors`` small silent objects above the band, each at the least
        overlapping of eight tries; their classes and boxes are appended to ``labels``, ``boxes``."""
        cfg = self.config
        size = cfg.image_size
        for _ in range(cfg.n_distractors):
            dk = int(rng.integers(cfg.num_classes))
            side = size * rng.uniform(*cfg.distractor_scale)
            aspect = rng.uniform(*cfg.object_aspect)
            w, h = min(side * math.sqrt(aspect), size), min(side / math.sqrt(aspect), size)
            best, best_overlap = None, math.inf
            for _try in range(8):
                x = rng.uniform(0, size - w)
                y = rng.uniform(0, max(0.0, band_top - 0.5 * h))
                cand = (x, y, x + w, y + h)
                overlap = 0.0
                for other in ([box_f] if box_f else []) + [tuple(map(float, b)) for b in boxes]:
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
            labels.append(dk)
            boxes.append(_int_box(best, size))

    def _band_class(self, rng: np.random.Generator, kind: str, label: int) -> int:
        """The class whose texture the band shows: the sound's own with the class's
        ``class_context_p``, else one of the other classes uniformly; an ambient scene's band is
        its source. With ``paired_band`` the draws are the same whatever the outcome."""
        cfg = self.config
        K = cfg.num_classes
        if cfg.paired_band:
            u, other = rng.uniform(), int(rng.integers(K - 1))
            typical = kind == "ambient" or u < cfg.class_context_p(label)
            return label if typical else (label + 1 + other) % K
        if kind == "ambient":
            return label
        if rng.uniform() < cfg.class_context_p(label):
            return label
        return int((label + 1 + rng.integers(K - 1)) % K)

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


def _free_x(u: float, w: float, size: float, taken: list[tuple[float, float]]) -> float:
    """A left edge for a box of width ``w`` in ``[0, size]``: the ``u``-quantile (``u`` in
    [0, 1)) of the positions where it overlaps none of the ``taken`` spans ``(x1, x2)``, or,
    when there is none, the position that overlaps them least."""
    hi = max(size - w, 0.0)
    # free left edges: [0, hi] minus (x1 - w, x2) for every taken span
    free = [(0.0, hi)]
    for x1, x2 in taken:
        cut = []
        for a, b in free:
            if x2 <= a or x1 - w >= b:
                cut.append((a, b))
                continue
            if x1 - w > a:
                cut.append((a, x1 - w))
            if x2 < b:
                cut.append((x2, b))
        free = cut
    length = sum(b - a for a, b in free)
    if free and length > 0:
        target = u * length
        for a, b in free:
            if target <= b - a:
                return a + target
            target -= b - a
        return free[-1][1]
    if free:  # single points
        return free[min(int(u * len(free)), len(free) - 1)][0]
    def overlap(x: float) -> float:
        return sum(max(0.0, min(x + w, x2) - max(x, x1)) for x1, x2 in taken)
    return min((0.0, hi), key=overlap)


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
    chunks = [indices[k:k + chunk] for k in range(0, len(indices), chunk)]
    cfg = world.config.to_dict()
    ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for part in pool.map(_render_chunk, [cfg] * len(chunks), [world.seed] * len(chunks), chunks):
            for meta, arrays in part:
                yield dataclasses.replace(meta, **{f: torch.from_numpy(a) for f, a in zip(_TENSOR_FIELDS, arrays)})
