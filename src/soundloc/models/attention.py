"""The localization module (the paper's attention box), Senocak et al. (CVPR 2018), Sec. 3.1.

Given the visual grid ``V = {v_1, ..., v_M}`` (``v_i`` in R^D, one per cell) and the sound
feature ``f_s``, the module computes (slide equations, as coded by the authors):

1. ``h = normalize(FC_{->D}(ReLU(FC(f_s))))`` -- the sound feature mapped into the visual
   space (FC sound_dim->sound_hidden, ReLU, FC sound_hidden->D, L2-normalised);
2. the association score of each cell, with ``v̂_i = v_i / ||v_i||``:

   - mechanism 1 (``"cosine"``): ``a_i = <v̂_i, h>`` (cosine similarity);
   - mechanism 2 (``"relu"``):   ``a_i = ReLU(<v̂_i, h>)``;

3. the attention ``α_i = exp(a_i / τ) / Σ_j exp(a_j / τ)`` over the ``M`` cells (the paper has no
   temperature, i.e. ``τ = 1``; it is exposed because over cosines in [-1, 1] a softmax with
   ``τ = 1`` stays close to uniform);
4. the attended visual vector ``z = Σ_i α_i v_i`` with the *unnormalised* ``v_i``;
5. ``f_v = FC_{->sound_dim}(ReLU(FC(ReLU(z))))`` (ReLU, FC D->visual_hidden, ReLU,
   FC visual_hidden->sound_dim), the visual embedding compared with ``f_s`` by the triplet loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Mechanism = Literal["cosine", "relu"]

_EPS = 1e-12


@dataclass
class AttentionOutput:
    """What :class:`LocalizationModule` returns (all tensors).

    - ``attention`` ``[B, H', W']``: α, non-negative, each map sums to 1;
    - ``logits`` ``[B, H', W']``: ``a_i / τ``, the pre-softmax scores (for a stable L_S);
    - ``scores`` ``[B, H', W']``: ``a_i`` (cosine or ReLU(cosine), in [-1, 1]);
    - ``z`` ``[B, D]``: the attended visual vector;
    - ``f_v`` ``[B, sound_dim]``: the visual embedding.
    """

    attention: torch.Tensor
    logits: torch.Tensor
    scores: torch.Tensor
    z: torch.Tensor
    f_v: torch.Tensor


class LocalizationModule(nn.Module):
    """Attention over the visual grid driven by the sound (see the module docstring)."""

    def __init__(
        self,
        visual_dim: int = 512,
        sound_dim: int = 1000,
        sound_hidden: int = 1000,
        visual_hidden: int = 512,
        mechanism: Mechanism = "cosine",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if mechanism not in ("cosine", "relu"):
            raise ValueError(f"mechanism must be 'cosine' or 'relu', got {mechanism!r}")
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        for name, val in (("visual_dim", visual_dim), ("sound_dim", sound_dim),
                          ("sound_hidden", sound_hidden), ("visual_hidden", visual_hidden)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        self.visual_dim = visual_dim
        self.sound_dim = sound_dim
        self.mechanism: str = mechanism
        self.temperature = float(temperature)
        # Step 1: sound feature -> h in the visual space.
        self.sound_fc1 = nn.Linear(sound_dim, sound_hidden)
        self.sound_fc2 = nn.Linear(sound_hidden, visual_dim)
        # Step 5: z -> f_v in the sound feature space.
        self.visual_fc1 = nn.Linear(visual_dim, visual_hidden)
        self.visual_fc2 = nn.Linear(visual_hidden, sound_dim)

    def sound_query(self, sound_feature: torch.Tensor) -> torch.Tensor:
        """Step 1: ``h = normalize(FC(ReLU(FC(f_s))))``, shape ``[B, D]``, unit length."""
        h = self.sound_fc2(F.relu(self.sound_fc1(sound_feature)))
        return F.normalize(h, dim=1, eps=_EPS)

    def scores(self, visual: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Step 2: ``a_i`` for every cell, ``[B, H', W']`` (cosine or ReLU(cosine))."""
        v_hat = F.normalize(visual, dim=1, eps=_EPS)
        a = torch.einsum("bdhw,bd->bhw", v_hat, h)
        if self.mechanism == "relu":
            a = F.relu(a)
        return a

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """Step 5: ``f_v = FC(ReLU(FC(ReLU(z))))``."""
        return self.visual_fc2(F.relu(self.visual_fc1(F.relu(z))))

    def check_inputs(self, visual: torch.Tensor, sound_feature: torch.Tensor) -> None:
        """``ValueError`` unless ``visual`` is ``[B, D, H', W']`` and ``sound_feature`` ``[B, sound_dim]``."""
        if not isinstance(visual, torch.Tensor) or visual.dim() != 4 or visual.shape[1] != self.visual_dim:
            shape = tuple(visual.shape) if isinstance(visual, torch.Tensor) else type(visual).__name__
            raise ValueError(f"visual_features must have shape [B, {self.visual_dim}, H', W'], got {shape}")
        if (not isinstance(sound_feature, torch.Tensor) or sound_feature.dim() != 2
                or sound_feature.shape[1] != self.sound_dim):
            shape = tuple(sound_feature.shape) if isinstance(sound_feature, torch.Tensor) else type(sound_feature).__name__
            raise ValueError(f"sound_feature must have shape [B, {self.sound_dim}], got {shape}")
        if visual.shape[0] != sound_feature.shape[0]:
            raise ValueError(
                f"batch sizes differ: visual_features has {visual.shape[0]}, "
                f"sound_feature has {sound_feature.shape[0]}"
            )

    def forward(self, visual: torch.Tensor, sound_feature: torch.Tensor) -> AttentionOutput:
        """``visual`` ``[B, D, H', W']`` and ``sound_feature`` ``[B, sound_dim]`` -> :class:`AttentionOutput`."""
        self.check_inputs(visual, sound_feature)
        b, _, gh, gw = visual.shape
        h = self.sound_query(sound_feature)
        a = self.scores(visual, h)
        logits = a / self.temperature
        attention = torch.softmax(logits.reshape(b, gh * gw), dim=1).reshape(b, gh, gw)
        z = torch.einsum("bhw,bdhw->bd", attention, visual)
        f_v = self.embed(z)
        return AttentionOutput(attention=attention, logits=logits, scores=a, z=z, f_v=f_v)
