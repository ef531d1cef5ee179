"""The sound network: SoundNet-8 on the raw waveform (the paper's "sound network" box).

Senocak et al. (CVPR 2018), Sec. 3 / Fig. 2: the sound stream is SoundNet (Aytar, Vondrick,
Torralba, NeurIPS 2016), eight 1-D convolutions over the raw mono waveform at 22,050 Hz. The
localization paper takes the conv8 "objects" output (1000 channels) and averages it over time:
a 1000-d sound feature ``f_s`` for any clip long enough to give one conv8 step.

Layers (out channels, kernel, stride, padding), every conv followed by BatchNorm and ReLU, the
conv8 heads by nothing (they are SoundNet's class scores)::

    conv1 (16, 64, 2, 32)  -> maxpool 8/8
    conv2 (32, 32, 2, 16)  -> maxpool 8/8
    conv3 (64, 16, 2, 8)
    conv4 (128, 8, 2, 4)
    conv5 (256, 4, 2, 2)   -> maxpool 4/4
    conv6 (512, 4, 2, 2)
    conv7 (1024, 4, 2, 2)
    conv8 objects (1000, 8, 2, 0) | conv8 scenes (401, 8, 2, 0)

Each layer maps a length ``L`` to ``floor((L + 2p - k) / s) + 1``. Because conv8 has no padding
the shortest clip that yields one output step is 209,374 samples (9.5 s at 22,050 Hz), which
:func:`min_samples_for` computes from the layer list (and the tests check independently).

Two variants (``variant=``):

- ``"soundnet8"``: the faithful network above.
- ``"short"``: a CPU variant for the chapters' ~1 s synthetic clips (documented here, *not* the
  paper's network): the same eight convolutions with the time pooling shrunk to 4/4, 4/4, 2/2
  and conv8's kernel 4, stride 1. Total stride 4,096 instead of 65,536; the minimum clip is
  9,326 samples (0.42 s at 22,050 Hz); a 1 s clip gives 4 conv8 steps.

``width`` multiplies every hidden channel count (``16 * width`` ... ``1024 * width``, at least 1)
for slimmer CPU models; the head sizes are set separately (``objects_dim``, ``scenes_dim``).

Weights: no official PyTorch SoundNet weights exist. ``weights_path`` accepts a state dict saved
with ``torch.save`` (``data_scripts/convert_soundnet.py`` converts the Torch7 release or its
TensorFlow port, :mod:`soundloc.models.soundnet_weights`) whose keys follow this module's names: ``conv{1..7}.0.weight/bias`` (Conv1d), ``conv{1..7}.1.{weight,bias,
running_mean,running_var}`` (BatchNorm1d), ``conv8_objects.weight/bias``,
``conv8_scenes.weight/bias``. The original SoundNet was fed waveforms scaled to about
[-256, 256]; ``input_scale`` multiplies the input accordingly (1.0 for models trained here).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from soundloc.constants import SAMPLE_RATE


SoundVariant = Literal["soundnet8", "short"]


@dataclass(frozen=True)
class _Conv:
    out_channels: int
    kernel: int
    stride: int
    padding: int


@dataclass(frozen=True)
class _Pool:
    kernel: int
    stride: int


# The layer lists of the two variants, from conv1 to conv7 (conv8 handled separately).
_CONV_SPECS: tuple[_Conv, ...] = (
    _Conv(16, 64, 2, 32),
    _Conv(32, 32, 2, 16),
    _Conv(64, 16, 2, 8),
    _Conv(128, 8, 2, 4),
    _Conv(256, 4, 2, 2),
    _Conv(512, 4, 2, 2),
    _Conv(1024, 4, 2, 2),
)
# Pool after conv1, conv2 and conv5 (by index into _CONV_SPECS).
_POOLS: dict[str, dict[int, _Pool]] = {
    "soundnet8": {0: _Pool(8, 8), 1: _Pool(8, 8), 4: _Pool(4, 4)},
    "short": {0: _Pool(4, 4), 1: _Pool(4, 4), 4: _Pool(2, 2)},
}
_CONV8: dict[str, _Conv] = {
    # out_channels of conv8 is a placeholder; the heads set their own sizes.
    "soundnet8": _Conv(0, 8, 2, 0),
    "short": _Conv(0, 4, 1, 0),
}


def _layer_sequence(variant: str) -> list[_Conv | _Pool]:
    if variant not in _POOLS:
        raise ValueError(f"variant must be one of {sorted(_POOLS)}, got {variant!r}")
    layers: list[_Conv | _Pool] = []
    for i, conv in enumerate(_CONV_SPECS):
        layers.append(conv)
        if i in _POOLS[variant]:
            layers.append(_POOLS[variant][i])
    layers.append(_CONV8[variant])
    return layers


def min_samples_for(variant: str = "soundnet8") -> int:
    """Shortest waveform (in samples) for which the network gives one conv8 output step.

    Inverts ``L_out = floor((L + 2p - k) / s) + 1`` layer by layer from the output backwards:
    ``L_out >= n`` holds exactly when ``L >= (n - 1) * s + k - 2p``.
    """
    need = 1
    for layer in reversed(_layer_sequence(variant)):
        pad = layer.padding if isinstance(layer, _Conv) else 0
        need = max((need - 1) * layer.stride + layer.kernel - 2 * pad, 1)
    return need


def output_steps_for(num_samples: int, variant: str = "soundnet8") -> int:
    """Number of conv8 time steps for a waveform of ``num_samples`` samples (0 if too short)."""
    length = int(num_samples)
    for layer in _layer_sequence(variant):
        pad = layer.padding if isinstance(layer, _Conv) else 0
        span = length + 2 * pad - layer.kernel
        if span < 0:
            return 0
        length = span // layer.stride + 1
    return length


def receptive_field_for(variant: str = "soundnet8") -> tuple[int, int]:
    """Receptive field of one conv8 output step and the hop between steps, both in samples.

    Walks the layer list from the input: a layer of kernel ``k`` and stride ``s`` widens the
    field by ``(k - 1)`` times the hop so far (``r += (k - 1) * j``) and multiplies the hop by
    ``s`` (``j *= s``). Padding does not change the field; it lets the first step's field
    reach before the clip's start, which is why :func:`min_samples_for` is smaller.
    """
    size, hop = 1, 1
    for layer in _layer_sequence(variant):
        size += (layer.kernel - 1) * hop
        hop *= layer.stride
    return size, hop


def pad_waveform(
    waveform: torch.Tensor, min_samples: int, mode: Literal["repeat", "zeros"] = "repeat"
) -> torch.Tensor:
    """Lengthen a waveform ``[..., T]`` to at least ``min_samples`` samples along the last axis.

    ``mode="repeat"`` tiles the clip (loops the sound, so the time-averaged feature describes the
    same sound rather than silence); ``mode="zeros"`` appends silence. Clips already long enough
    are returned unchanged. A repeated clip is cut to exactly ``min_samples``.
    """
    if not isinstance(waveform, torch.Tensor):
        raise TypeError(f"waveform must be a torch.Tensor, got {type(waveform).__name__}")
    if waveform.dim() < 1 or waveform.shape[-1] == 0:
        raise ValueError(f"waveform must have a non-empty last (time) axis, got shape {tuple(waveform.shape)}")
    if mode not in ("repeat", "zeros"):
        raise ValueError(f"mode must be 'repeat' or 'zeros', got {mode!r}")
    length = waveform.shape[-1]
    if length >= min_samples:
        return waveform
    if mode == "zeros":
        return F.pad(waveform, (0, min_samples - length))
    reps = math.ceil(min_samples / length)
    return waveform.repeat(*([1] * (waveform.dim() - 1)), reps)[..., :min_samples]


def check_waveform(waveform: object, name: str = "waveform") -> torch.Tensor:
    """Validate a waveform batch ``[B, T]`` or ``[B, 1, T]`` and return it as ``[B, 1, T]``."""
    if not isinstance(waveform, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(waveform).__name__}")
    if not waveform.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {waveform.dtype}")
    if waveform.dim() == 2:
        waveform = waveform.unsqueeze(1)
    elif waveform.dim() != 3 or waveform.shape[1] != 1:
        raise ValueError(
            f"{name} must have shape [B, T] or [B, 1, T] (mono), got {tuple(waveform.shape)}"
        )
    if waveform.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(waveform.shape)})")
    return waveform


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class SoundNet8(nn.Module):
    """SoundNet-8 (Aytar et al., 2016) as the paper's sound stream; see the module docstring.

    ``forward(waveform)`` maps ``[B, T]`` or ``[B, 1, T]`` float waveforms (22,050 Hz) to the
    ``[B, objects_dim]`` "objects" feature averaged over the conv8 time steps; with
    ``return_scenes=True`` it returns ``(objects, scenes)``, the scene head (401-d) averaged the
    same way. Waveforms shorter than :attr:`min_samples` raise ``ValueError``.
    """

    def __init__(
        self,
        width: float = 1.0,
        variant: SoundVariant = "soundnet8",
        objects_dim: int = 1000,
        scenes_dim: int = 401,
        input_scale: float = 1.0,
        weights_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(width, (int, float)) and width > 0):
            raise ValueError(f"width must be a positive number, got {width!r}")
        if objects_dim < 1 or scenes_dim < 1:
            raise ValueError(f"objects_dim and scenes_dim must be >= 1, got {objects_dim}, {scenes_dim}")
        layers = _layer_sequence(variant)  # validates the variant
        self.variant: str = variant
        self.width = float(width)
        self.objects_dim = int(objects_dim)
        self.scenes_dim = int(scenes_dim)
        self.input_scale = float(input_scale)

        in_ch = 1
        pools = _POOLS[variant]
        for i, spec in enumerate(_CONV_SPECS):
            out_ch = _scaled(spec.out_channels, width)
            block = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, spec.kernel, spec.stride, spec.padding),
                nn.BatchNorm1d(out_ch),
                nn.ReLU(inplace=True),
            )
            self.add_module(f"conv{i + 1}", block)
            if i in pools:
                self.add_module(f"pool{i + 1}", nn.MaxPool1d(pools[i].kernel, pools[i].stride))
            in_ch = out_ch
        c8 = layers[-1]
        assert isinstance(c8, _Conv)
        self.conv8_objects = nn.Conv1d(in_ch, self.objects_dim, c8.kernel, c8.stride, c8.padding)
        self.conv8_scenes = nn.Conv1d(in_ch, self.scenes_dim, c8.kernel, c8.stride, c8.padding)
        self.out_channels_conv7 = in_ch
        self._min_samples = min_samples_for(variant)
        if weights_path is not None:
            self.load_weights(weights_path)

    @property
    def min_samples(self) -> int:
        """Shortest accepted waveform in samples (209,374 for the faithful SoundNet-8)."""
        return self._min_samples

    def output_steps(self, num_samples: int) -> int:
        """Number of conv8 time steps for a clip of ``num_samples`` samples."""
        return output_steps_for(num_samples, self.variant)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Load a converted SoundNet state dict (keys as in the module docstring); a file made by
        :mod:`soundloc.models.soundnet_weights` must match this network's ``input_scale``."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SoundNet weights_path does not exist: {os.fspath(path)!r}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or not a torch file
            raise ValueError(f"could not read SoundNet weights from {os.fspath(path)!r}: {exc}") from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            expected = state.get("input_scale")  # recorded by soundloc.models.soundnet_weights
            if expected is not None and float(expected) != self.input_scale:
                raise ValueError(
                    f"SoundNet weights in {os.fspath(path)!r} expect waveforms scaled by {float(expected):g} "
                    f"(ModelConfig.waveform_scale), this network scales by {self.input_scale:g}"
                )
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"SoundNet weights file {os.fspath(path)!r} does not hold a state dict")
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"SoundNet weights in {os.fspath(path)!r} do not match this network "
                f"(variant={self.variant!r}, width={self.width}): {exc}"
            ) from exc

    def _trunk(self, waveform: torch.Tensor) -> torch.Tensor:
        x = check_waveform(waveform)
        if x.shape[-1] < self._min_samples:
            raise ValueError(
                f"waveform is too short for {self.variant}: {x.shape[-1]} samples, the minimum is "
                f"{self._min_samples} samples ({self._min_samples / SAMPLE_RATE:.2f} s at "
                f"{SAMPLE_RATE} Hz); pad it (soundloc.models.pad_waveform) or use a longer clip"
            )
        if self.input_scale != 1.0:
            x = x * self.input_scale
        for i in range(1, len(_CONV_SPECS) + 1):
            x = getattr(self, f"conv{i}")(x)
            pool = getattr(self, f"pool{i}", None)
            if pool is not None:
                x = pool(x)
        return x

    def forward_maps(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv8 outputs over time: objects ``[B, objects_dim, T']`` and scenes ``[B, scenes_dim, T']``."""
        x = self._trunk(waveform)
        return self.conv8_objects(x), self.conv8_scenes(x)

    def forward(
        self, waveform: torch.Tensor, return_scenes: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Time-averaged conv8 "objects" feature ``[B, objects_dim]`` (and scenes if asked)."""
        x = self._trunk(waveform)
        objects = self.conv8_objects(x).mean(dim=-1)
        if not return_scenes:
            return objects
        return objects, self.conv8_scenes(x).mean(dim=-1)
