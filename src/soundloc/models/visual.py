"""The visual network (the paper's "visual network" box): a conv feature grid of stride 16.

Senocak et al. (CVPR 2018), Sec. 3: the image goes through VGG16's convolutional layers up to
conv5_3 (+ ReLU), giving an ``H/16 x W/16`` grid of ``D = 512``-d vectors ``v_i`` (for the
authors' 320x320 frames a 20x20 grid, ``M = 400`` cells). The authors keep an ImageNet-trained
VGG16 frozen.

Two backbones share the same contract -- ``forward(image [B, 3, H, W]) -> [B, D, H//s, W//s]``
with attributes ``out_channels`` (D) and ``stride`` (s):

- :class:`VGG16Features`: faithful; ``pretrained=True`` loads torchvision's ImageNet weights
  (``VGG16_Weights.IMAGENET1K_V1``) and fails with a clear message when offline.
- :class:`SmallCNN`: a small from-scratch CNN for CPU chapters (stride 16 or 8, any width).

Inputs are RGB floats; when ``normalize=True`` the backbone expects values in [0, 1] and applies
ImageNet's mean/std itself (what the pretrained VGG16 was trained on).
"""
from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG16 ("configuration D") up to conv5_3: channel counts, "M" = 2x2 max-pool.
_VGG16_CONV5_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)

_OFFLINE_HELP = (
    "Could not obtain torchvision's ImageNet VGG16 weights (VGG16_Weights.IMAGENET1K_V1, "
    "{url}). This usually means there is no internet access. Either download the file on a "
    "machine with internet and place it as '{cache}' (torch hub cache: $TORCH_HOME/hub/"
    "checkpoints), or build the model with pretrained=False. Original error: {err}"
)


def check_image(image: object, min_size: int = 1, name: str = "image") -> torch.Tensor:
    """Validate an image batch: a floating tensor ``[B, 3, H, W]`` with ``H, W >= min_size``."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (RGB in [0, 1]), got dtype {image.dtype}")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape [B, 3, H, W], got {tuple(image.shape)}")
    if image.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(image.shape)})")
    if image.shape[2] < min_size or image.shape[3] < min_size:
        raise ValueError(
            f"{name} is too small: {image.shape[2]}x{image.shape[3]}, height and width must be at "
            f"least the backbone stride {min_size}"
        )
    return image


def receptive_field(backbone: nn.Module) -> tuple[int, int]:
    """Receptive field of one output cell (its side in pixels) and the stride between cells.

    Walks ``backbone.features`` (a :class:`VGG16Features` or :class:`SmallCNN`) in order: a
    convolution or pooling of kernel ``k`` and stride ``s`` widens the field by ``(k - 1)``
    times the stride so far (``r += (k - 1) * j``) and multiplies the stride by ``s``
    (``j *= s``); other layers (ReLU, BatchNorm) leave both alone. VGG16's conv5_3: 196 px,
    stride 16.
    """
    features = getattr(backbone, "features", None)
    if not isinstance(features, nn.Sequential):
        raise TypeError(f"backbone must have a .features nn.Sequential (VGG16Features or SmallCNN), got {type(backbone).__name__}")
    size, stride = 1, 1
    for layer in features:
        if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            continue  # ReLU, BatchNorm: the same field
        k, s = layer.kernel_size, layer.stride
        k, s = (k if isinstance(k, int) else k[0]), (s if isinstance(s, int) else s[0])
        size += (k - 1) * stride
        stride *= s
    return size, stride


class _Backbone(nn.Module):
    """Shared parts: input normalisation, validation and freezing."""

    out_channels: int
    stride: int

    def __init__(self, normalize: bool) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen = False

    def freeze(self) -> None:
        """Stop gradients into the backbone and keep it in eval mode (as the authors' VGG16)."""
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "_Backbone":
        # A frozen backbone stays in eval mode so that BatchNorm statistics do not drift.
        return super().train(mode and not self.frozen)

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        image = check_image(image, self.stride)
        if self.normalize:
            image = (image - self.mean) / self.std
        return image


def _load_vgg16_imagenet_state() -> dict[str, torch.Tensor]:
    """Torchvision's ImageNet VGG16 state dict (from the hub cache, downloading if needed)."""
    import os

    from torchvision.models import VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, map_location="cpu")
    except Exception as exc:  # URLError, socket errors, hash mismatch, ...
        raise RuntimeError(_OFFLINE_HELP.format(url=url, cache=cache, err=exc)) from exc


class VGG16Features(_Backbone):
    """VGG16 conv1_1 ... conv5_3 + ReLU (torchvision's ``vgg16().features[:30]``): stride 16, D = 512.

    Layer indices match torchvision's ``features`` so that its state dict loads directly.
    """

    def __init__(self, pretrained: bool = False, freeze: bool = False, normalize: bool = True) -> None:
        super().__init__(normalize)
        self.out_channels = 512
        self.stride = 16
        state = _load_vgg16_imagenet_state() if pretrained else None  # fail fast when offline
        layers: list[nn.Module] = []
        in_ch = 3
        for item in _VGG16_CONV5_3:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1))
                layers.append(nn.ReLU(inplace=True))
                in_ch = int(item)
        self.features = nn.Sequential(*layers)
        assert len(self.features) == 30
        if state is not None:
            ours = {
                k[len("features."):]: v
                for k, v in state.items()
                if k.startswith("features.") and int(k.split(".")[1]) < 30
            }
            self.features.load_state_dict(ours, strict=True)
        if freeze:
            self.freeze()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> conv5_3 + ReLU features ``[B, 512, H//16, W//16]``."""
        return self.features(self._prepare(image))


class SmallCNN(_Backbone):
    """A small from-scratch CNN with VGG16's contract, for CPU chapters.

    ``log2(stride)`` stages of conv3x3-BN-ReLU (channels ``width * 2**k``, capped at
    ``out_channels``) each followed by a 2x2 max-pool, then a last conv3x3-BN-ReLU to
    ``out_channels`` (like conv5_3 + ReLU: the grid vectors are non-negative).
    """

    def __init__(
        self,
        width: int = 32,
        out_channels: int = 128,
        stride: int = 16,
        freeze: bool = False,
        normalize: bool = True,
    ) -> None:
        super().__init__(normalize)
        if stride not in (2, 4, 8, 16, 32):
            raise ValueError(f"stride must be a power of two between 2 and 32, got {stride!r}")
        if width < 1 or out_channels < 1:
            raise ValueError(f"width and out_channels must be >= 1, got {width}, {out_channels}")
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        layers: list[nn.Module] = []
        in_ch = 3
        for k in range(stride.bit_length() - 1):
            ch = min(width * 2**k, out_channels)
            layers += [
                nn.Conv2d(in_ch, ch, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=2, stride=2),
            ]
            in_ch = ch
        layers += [
            nn.Conv2d(in_ch, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        self.features = nn.Sequential(*layers)
        if freeze:
            self.freeze()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, out_channels, H//stride, W//stride]``."""
        return self.features(self._prepare(image))
