"""Where the attention goes: its mass and density on a region of the image.

The pigeon superstition (Senocak et al., CVPR 2018, Sec. 4) is attention that settles on what
co-occurs with a sound (the rails) rather than on its source (the train). To see it, measure
how much of the attention map α lies on each region. The mass on a region is ``Σ_i α_i c_i``
with ``c_i`` the fraction of grid cell ``i`` that the region covers. A uniform map puts on every
region exactly its area fraction, so masses of regions of different sizes cannot be compared;
the *density* divides the mass by the area fraction (1 = chance). The superstition is the
context's density above the object's; its fix is the object's above the context's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from soundloc.metrics.baselines import random_maps


def grid_coverage(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The fraction of each grid cell that a mask covers (area averaging).

    Args:
        mask: ``[H, W]`` or ``[B, H, W]`` values in [0, 1] on the image.
        grid: ``(h, w)`` cells; ``H, W`` need not be multiples (cells then share pixels as
            ``adaptive_avg_pool2d`` does).

    Returns:
        ``[h, w]`` or ``[B, h, w]`` float32 coverages in [0, 1].
    """
    if mask.dim() not in (2, 3):
        raise ValueError(f"mask must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
    batched = mask.dim() == 3
    x = mask.float()[:, None] if batched else mask.float()[None, None]
    cover = F.adaptive_avg_pool2d(x, tuple(grid))[:, 0]
    return cover if batched else cover[0]


def region_mass(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention mass on a region: ``Σ_i α_i c_i``, ``c_i`` the fraction of cell ``i`` in the mask.

    Args:
        attention: ``[B, h, w]`` maps (each summing to 1) on the model's grid.
        mask: ``[B, H, W]`` binary region masks on the image, ``H, W`` multiples of ``h, w``.

    Returns:
        ``[B]`` masses in [0, 1] (a uniform map gives the mask's area fraction).
    """
    if attention.dim() != 3 or mask.dim() != 3 or attention.shape[0] != mask.shape[0]:
        raise ValueError(f"attention [B, h, w] and mask [B, H, W] needed, got {tuple(attention.shape)} and {tuple(mask.shape)}")
    h, w = attention.shape[-2:]
    if mask.shape[-2] % h or mask.shape[-1] % w:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} is not a multiple of the grid {(h, w)}")
    cover = grid_coverage(mask, (h, w))
    return (attention.float() * cover).flatten(1).sum(1)


def region_density(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mass per unit area: :func:`region_mass` ÷ the region's area fraction (1 = chance).

    Regions with zero area give NaN.
    """
    area = mask.float().flatten(1).mean(1)
    mass = region_mass(attention, mask)
    return torch.where(area > 0, mass / area.clamp_min(1e-12), torch.full_like(mass, float("nan")))


def attention_summary(attention: torch.Tensor, object_mask: torch.Tensor, context_mask: torch.Tensor) -> dict[str, float]:
    """Mean mass and mean density on the object and on the context, and the regions' mean
    areas, over a batch of maps (regions with zero area are left out of the density means)."""
    om, cm = region_mass(attention, object_mask), region_mass(attention, context_mask)
    od, cd = region_density(attention, object_mask), region_density(attention, context_mask)
    return {
        "attention_on_object": float(om.mean()),
        "attention_on_context": float(cm.mean()),
        "object_density": float(torch.nanmean(od)),
        "context_density": float(torch.nanmean(cd)),
        "object_area": float(object_mask.float().flatten(1).mean(1).mean()),
        "context_area": float(context_mask.float().flatten(1).mean(1).mean()),
    }


def random_attention(n: int, grid: tuple[int, int], seed: int) -> torch.Tensor:
    """The random baseline's maps as attention: :func:`~soundloc.metrics.random_maps` drawn
    from ``seed`` (the maps the random baseline scores first), normalised to sum 1."""
    maps = random_maps(n, tuple(grid), torch.Generator().manual_seed(seed))
    return maps / maps.flatten(1).sum(1)[:, None, None]


__all__ = ["attention_summary", "grid_coverage", "random_attention", "region_density", "region_mass"]
