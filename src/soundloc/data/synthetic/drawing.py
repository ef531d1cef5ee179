"""The world's pictures: shape silhouettes, context textures, shaded objects, box helpers."""
from __future__ import annotations

import math

import numpy as np

from soundloc.data.synthetic.config import SHAPES
from soundloc.data.types import BoxT


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


def _int_box(box: tuple[float, float, float, float], size: int) -> BoxT:
    x1, y1, x2, y2 = box
    return (max(0, int(round(x1))), max(0, int(round(y1))), min(size, int(round(x2))), min(size, int(round(y2))))


def _rect_mask(box: BoxT, size: int) -> np.ndarray:
    m = np.zeros((size, size), dtype=np.float32)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = 1.0
    return m
