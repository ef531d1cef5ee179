"""The full two-stream model of Senocak et al. (CVPR 2018), Fig. 2: visual network + sound
network + localization (attention) module, with its configuration and (de)serialisation.

``SoundLocalizer(config).forward(image, waveform)`` returns a :class:`LocalizerOutput` with the
attention map ``α`` over the visual grid and the two embeddings ``f_v`` (from the attended visual
vector) and ``f_s`` (the sound feature itself, as in the authors' code) that the triplet loss
L_U compares.

Inputs:

- ``image``: float ``[B, 3, H, W]``, RGB in [0, 1] (the backbone applies ImageNet's mean/std
  when ``config.normalize_image``); ``H, W`` at least the backbone stride.
- ``waveform``: float ``[B, T]`` or ``[B, 1, T]``, mono at 22,050 Hz in [-1, 1]; multiplied by
  ``config.waveform_scale`` inside the sound network (256 for SoundNet's original input range
  [-256, 256], 1 for networks trained here). Clips shorter than the sound network's minimum are
  refused, or padded when ``config.short_clip_padding`` is ``"repeat"`` / ``"zeros"``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from soundloc.config import ConfigMixin, check_choice, check_int, check_number
from soundloc.models.attention import LocalizationModule, Mechanism
from soundloc.models.sound import SAMPLE_RATE, SoundNet8, SoundVariant, check_waveform, pad_waveform
from soundloc.models.visual import SmallCNN, VGG16Features, check_image
from soundloc.utils.files import atomic_path, read_torch_file

VisualBackbone = Literal["vgg16", "small"]
Padding = Literal["repeat", "zeros"]


@dataclass
class ModelConfig(ConfigMixin):
    """Everything needed to rebuild a :class:`SoundLocalizer` (plain types only, so that
    ``ModelConfig(**dataclasses.asdict(cfg)) == cfg`` and it stores in a checkpoint).

    Visual stream: ``visual_backbone`` ``"vgg16"`` (faithful; D = 512, stride 16) or ``"small"``
    (:class:`SmallCNN` with ``visual_width`` base channels, ``visual_dim`` output channels and
    ``visual_stride`` 16, 8 or 4); ``pretrained`` loads ImageNet VGG16 weights; ``freeze_visual``
    stops its gradients (authors' setup); ``normalize_image`` applies ImageNet mean/std.

    Sound stream: ``sound_variant`` ``"soundnet8"`` (faithful, min. 209,374 samples) or
    ``"short"`` (CPU variant for ~1 s clips, see :mod:`soundloc.models.sound`);
    ``sound_width`` channel factor; ``sound_dim`` the objects head size (1000 faithful) which is
    also the size of ``f_s`` and ``f_v``; ``sound_weights_path`` an optional converted SoundNet
    state dict; ``freeze_sound``; ``waveform_scale``; ``short_clip_padding``.

    Attention: ``mechanism`` ``"cosine"`` (paper's mechanism 1) or ``"relu"`` (mechanism 2);
    ``temperature`` τ in ``α = softmax(a / τ)`` (1.0 = the paper); ``sound_hidden`` (FC
    sound_dim -> sound_hidden -> D) and ``visual_hidden`` (FC D -> visual_hidden -> sound_dim).

    Defaults for inputs (used by chapters and benchmarks, not enforced): ``image_size``,
    ``clip_samples``, ``sample_rate``.
    """

    visual_backbone: VisualBackbone = "vgg16"
    visual_width: int = 32
    visual_dim: int = 512
    visual_stride: int = 16
    pretrained: bool = False
    freeze_visual: bool = False
    normalize_image: bool = True
    sound_variant: SoundVariant = "soundnet8"
    sound_width: float = 1.0
    sound_dim: int = 1000
    sound_weights_path: str | None = None
    freeze_sound: bool = False
    waveform_scale: float = 1.0
    short_clip_padding: Padding | None = None
    mechanism: Mechanism = "cosine"
    temperature: float = 1.0
    sound_hidden: int = 1000
    visual_hidden: int = 512
    image_size: int = 320
    clip_samples: int = 20 * SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        check_choice(self, "visual_backbone", "sound_variant", "mechanism", "short_clip_padding")
        if self.visual_backbone == "vgg16":
            if self.visual_dim != 512 or self.visual_stride != 16:
                raise ValueError(
                    "visual_backbone='vgg16' has visual_dim 512 and visual_stride 16, got "
                    f"{self.visual_dim} and {self.visual_stride}"
                )
        else:
            if self.pretrained:
                raise ValueError("pretrained=True needs visual_backbone='vgg16' (the small CNN has no pretrained weights)")
            if self.visual_stride not in (4, 8, 16):
                raise ValueError(f"visual_stride must be 4, 8 or 16 for the small CNN, got {self.visual_stride!r}")
        check_number(self, "temperature", "sound_width", low_open=True)
        check_int(self, "visual_width", "visual_dim", "sound_dim", "sound_hidden", "visual_hidden",
                  "image_size", "clip_samples", "sample_rate")

    @classmethod
    def paper(cls, **overrides: Any) -> "ModelConfig":
        """The authors' setup: ImageNet VGG16 (frozen) at 320x320 -> 20x20 grid, SoundNet-8 on
        20 s clips (input scaled to [-256, 256]; frozen, as their precomputed features), 1000-d
        features, softmax attention without temperature.

        Offline, pass ``pretrained=False``. Without converted SoundNet weights
        (``sound_weights_path``) a frozen SoundNet is random: pass ``freeze_sound=False``.
        """
        base: dict[str, Any] = dict(
            visual_backbone="vgg16", visual_dim=512, visual_stride=16, pretrained=True,
            freeze_visual=True, normalize_image=True, sound_variant="soundnet8", sound_width=1.0,
            sound_dim=1000, freeze_sound=True, waveform_scale=256.0, mechanism="cosine",
            temperature=1.0, sound_hidden=1000, visual_hidden=512, image_size=320,
            clip_samples=20 * SAMPLE_RATE,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def cpu(cls, **overrides: Any) -> "ModelConfig":
        """A small from-scratch model that trains end to end on CPU in minutes: SmallCNN (width
        32, D = 128, stride 8: 64x64 images -> 8x8 grid) and the slim short-clip SoundNet
        (width 1/4, 128-d feature, 1 s clips at 22,050 Hz), FC hidden sizes 128."""
        base: dict[str, Any] = dict(
            visual_backbone="small", visual_width=32, visual_dim=128, visual_stride=8,
            pretrained=False, freeze_visual=False, normalize_image=True, sound_variant="short",
            sound_width=0.25, sound_dim=128, freeze_sound=False, waveform_scale=1.0,
            mechanism="cosine", temperature=1.0, sound_hidden=128, visual_hidden=128,
            image_size=64, clip_samples=SAMPLE_RATE,
        )
        base.update(overrides)
        return cls(**base)



@dataclass
class LocalizerOutput:
    """Forward output of :class:`SoundLocalizer`.

    - ``attention`` ``[B, H', W']``: α over the grid (softmax; non-negative, sums to 1);
    - ``logits`` ``[B, H', W']``: ``a_i / τ`` before the softmax (for L_S with log-softmax);
    - ``f_v`` ``[B, sound_dim]``: visual embedding from the attended vector;
    - ``f_s`` ``[B, sound_dim]``: the sound feature (compared with ``f_v`` by L_U);
    - ``z`` ``[B, D]``: the attended visual vector ``Σ α_i v_i``.
    """

    attention: torch.Tensor
    logits: torch.Tensor
    f_v: torch.Tensor
    f_s: torch.Tensor
    z: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class SoundLocalizer(nn.Module):
    """Visual network + sound network + localization module (paper Fig. 2)."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = ModelConfig()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        if config.visual_backbone == "vgg16":
            self.visual: VGG16Features | SmallCNN = VGG16Features(
                pretrained=config.pretrained, freeze=config.freeze_visual, normalize=config.normalize_image
            )
        else:
            self.visual = SmallCNN(
                width=config.visual_width, out_channels=config.visual_dim, stride=config.visual_stride,
                freeze=config.freeze_visual, normalize=config.normalize_image,
            )
        self.sound = SoundNet8(
            width=config.sound_width, variant=config.sound_variant,
            objects_dim=config.sound_dim, input_scale=config.waveform_scale,
            weights_path=config.sound_weights_path,
        )
        if config.freeze_sound:
            for p in self.sound.parameters():
                p.requires_grad_(False)
            self.sound.eval()
        self.attention = LocalizationModule(
            visual_dim=config.visual_dim, sound_dim=config.sound_dim, sound_hidden=config.sound_hidden,
            visual_hidden=config.visual_hidden, mechanism=config.mechanism,
            temperature=config.temperature,
        )

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def stride(self) -> int:
        """Visual stride: an ``H x W`` image gives an ``H // stride x W // stride`` grid."""
        return self.visual.stride

    @property
    def min_samples(self) -> int:
        """Shortest waveform the sound network accepts (without padding)."""
        return self.sound.min_samples

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Attention grid size for an image of ``height x width``."""
        return height // self.stride, width // self.stride

    def _param_dtype(self) -> torch.dtype:
        # Inputs of any floating dtype are cast to the model's (float64 audio from soundfile).
        return next(self.attention.parameters()).dtype

    def train(self, mode: bool = True) -> "SoundLocalizer":
        super().train(mode)
        if self.config.freeze_sound:  # keep frozen BatchNorm statistics fixed
            self.sound.eval()
        return self

    # -- the two streams -----------------------------------------------------------------------
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Visual network: ``[B, 3, H, W]`` -> grid features ``[B, D, H', W']``.

        A frozen stream (no parameter that requires a gradient) on an input that needs none
        runs under ``no_grad``: the authors' fixed VGG16 (Sec. 4) is a forward pass only, with
        no autograd bookkeeping. Gradients to the image (saliency) still flow."""
        image = check_image(image, self.stride)
        with _no_grad_if_frozen(self.visual, image):
            return self.visual(image.to(self._param_dtype()))

    def encode_sound(self, waveform: torch.Tensor) -> torch.Tensor:
        """Sound network: ``[B, T]`` / ``[B, 1, T]`` -> sound feature ``f_s`` ``[B, sound_dim]``
        (under ``no_grad`` when the stream is frozen, as :meth:`encode_image`)."""
        waveform = check_waveform(waveform).to(self._param_dtype())
        if self.config.short_clip_padding is not None:
            waveform = pad_waveform(waveform, self.sound.min_samples, self.config.short_clip_padding)  # type: ignore[arg-type]
        with _no_grad_if_frozen(self.sound, waveform):
            return self.sound(waveform)  # type: ignore[return-value]

    def localize(self, visual_features: torch.Tensor, sound_feature: torch.Tensor) -> LocalizerOutput:
        """Localization module on precomputed features (``f_s`` in the output is ``sound_feature``)."""
        out = self.attention(visual_features, sound_feature)
        return LocalizerOutput(
            attention=out.attention, logits=out.logits, f_v=out.f_v, f_s=sound_feature, z=out.z,
            extras={"scores": out.scores},
        )

    def forward(self, image: torch.Tensor, waveform: torch.Tensor) -> LocalizerOutput:
        """Full model: image ``[B, 3, H, W]`` and waveform ``[B, T]`` -> :class:`LocalizerOutput`."""
        image = check_image(image, self.stride)
        waveform = check_waveform(waveform)
        if image.shape[0] != waveform.shape[0]:
            raise ValueError(
                f"batch sizes differ: image has {image.shape[0]}, waveform has {waveform.shape[0]}"
            )
        return self.localize(self.encode_image(image), self.encode_sound(waveform))

    def score_sounds(
        self, image: torch.Tensor, waveforms: torch.Tensor, return_output: bool = False
    ) -> torch.Tensor | LocalizerOutput:
        """Attention maps of one image for each of ``S`` sounds: ``[S, H', W']``.

        ``image`` is ``[3, H, W]`` or ``[1, 3, H, W]``; ``waveforms`` ``[S, T]`` or ``[S, 1, T]``.
        The visual features are computed once and shared. Call in ``eval()`` mode (and under
        ``torch.no_grad()`` for interactive use). ``return_output=True`` gives the full output.
        """
        if isinstance(image, torch.Tensor) and image.dim() == 3:
            image = image.unsqueeze(0)
        image = check_image(image, self.stride)
        if image.shape[0] != 1:
            raise ValueError(f"image must be a single image [3, H, W] or [1, 3, H, W], got {tuple(image.shape)}")
        waveforms = check_waveform(waveforms, name="waveforms")
        feats = self.encode_image(image)
        f_s = self.encode_sound(waveforms)
        out = self.localize(feats.expand(f_s.shape[0], -1, -1, -1), f_s)
        return out if return_output else out.attention


def _no_grad_if_frozen(stream: nn.Module, x: torch.Tensor) -> Any:
    """``torch.no_grad()`` when neither ``stream``'s parameters nor ``x`` need a gradient (the
    output would need none either: the same numbers, without autograd's bookkeeping)."""
    if x.requires_grad or any(p.requires_grad for p in stream.parameters()):
        return contextlib.nullcontext()
    return torch.no_grad()


def build_model(config: ModelConfig) -> SoundLocalizer:
    """Build a :class:`SoundLocalizer` from a :class:`ModelConfig`."""
    return SoundLocalizer(config)


def save_model(path: str | os.PathLike[str], model: SoundLocalizer, extra: dict[str, Any] | None = None) -> None:
    """Write ``{"config", "state_dict", "extra"}`` to ``path`` atomically (temp file + rename).

    ``extra`` must hold plain types (numbers, strings, lists, dicts, tensors) so that
    :func:`load_model` can read it with ``torch.load(weights_only=True)``.
    """
    if not isinstance(model, SoundLocalizer):
        raise TypeError(f"model must be a SoundLocalizer, got {type(model).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    payload = {
        "config": dataclasses.asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra) if extra else {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a file written by :func:`save_model` (``weights_only=True``) and check its keys."""
    payload = read_torch_file(path, "model file", map_location)
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise ValueError(f"model file {os.fspath(path)!r} is not a soundloc checkpoint (needs 'config' and 'state_dict')")
    return payload


def load_model(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> SoundLocalizer:
    """Rebuild a model saved by :func:`save_model`. Pretrained weights are not downloaded again
    (the state dict holds them); ``config.pretrained`` keeps its recorded value."""
    payload = load_checkpoint(path, map_location)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model file {os.fspath(path)!r} has an invalid config: {exc}") from exc
    build_cfg = dataclasses.replace(config, pretrained=False, sound_weights_path=None)
    model = SoundLocalizer(build_cfg)
    model.config = config
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"model file {os.fspath(path)!r}: state_dict does not match its config: {exc}") from exc
    return model
