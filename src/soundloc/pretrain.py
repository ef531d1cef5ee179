"""Pretraining the visual stream as an image classifier: the synthetic world's "ImageNet".

In the paper (Senocak et al., CVPR 2018, Sec. 3.1 and 4) the visual network is VGG16
pretrained on ImageNet and kept frozen: the localization module learns to *read* features
that already encode objects, it does not learn to see. The synthetic world has no ImageNet, so
this module makes one: still images of a world with *another seed* (no scene is shared with
the pigeon experiment's world), labelled by one class per image (the sounding object's class;
no boxes, no sounds), and a linear classifier over the globally averaged feature map trained
with cross-entropy, as ImageNet classifiers are.

What the pretraining images show matters, and it is a parameter. ImageNet's trains stand on
rails: the photos that teach a network "train" also teach it that rails come with trains. By
default the pretraining world has the pigeon world's own statistics (the ground band shows
the object's class with probability ``context_p``), so the frozen features carry the same
co-occurrence. Setting ``world={"context_p": 1 / K}`` makes the band uninformative during
pretraining (an ImageNet without rails); the book uses it as a control.

Only the image matters here, so the pretraining world has neither off-screen nor ambient
scenes (every image shows its labelled object) and its clips are made as short as the world
allows rendering them (they are never used).

Training: Adam with a cosine decay over ``epochs``, random horizontal flips (the shapes are
mirror-symmetric, the band's stripes are not, so flips are a real augmentation), then the
BatchNorm running statistics are recomputed with the final weights over the training images
(a cumulative average over batches, :func:`recompute_batchnorm`): the running averages kept
during training mix statistics of earlier weights, and a frozen stream uses them for good.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from soundloc.config import ConfigMixin, check_int, check_number
from soundloc.data.synthetic import SyntheticWorld, WorldConfig, render_scenes
from soundloc.models import ModelConfig, build_model
from soundloc.utils.files import atomic_path
from soundloc.utils.progress import progress_bar
from soundloc.utils.seeding import seed_everything

#: World fields every pretraining world sets (images only: every scene shows its object, and
#: no other object as large: one labelled object per photo, as most of ImageNet's).
_IMAGE_ONLY = {"offscreen_p": 0.0, "ambient_p": 0.0, "clip_seconds": 0.05, "n_ground_objects": 0}


@dataclass
class PretrainConfig(ConfigMixin):
    """How the visual stream is pretrained (plain types; stored with the results).

    Attributes:
        world: :class:`~soundloc.data.synthetic.WorldConfig` overrides on top of the world the
            stream will be used on (e.g. ``{"context_p": 0.25}`` for uninformative context).
        world_seed_offset: the pretraining world's seed is the experiment's seed plus this.
        n_train: training images.
        n_test: held-out images (accuracy only).
        epochs, batch_size, lr: Adam with a cosine decay to zero.
        flip: random horizontal flips.
        workers: processes that render the images (0: in this process).
    """

    world: dict[str, Any] = field(default_factory=dict)
    world_seed_offset: int = 1000
    n_train: int = 8000
    n_test: int = 1000
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    flip: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        check_int(self, "n_train", "n_test", "epochs", "batch_size")
        check_int(self, "world_seed_offset", "workers", low=0)
        if self.batch_size > self.n_train:
            raise ValueError(f"PretrainConfig.batch_size ({self.batch_size}) exceeds n_train ({self.n_train})")
        check_number(self, "lr", low_open=True)
        if not isinstance(self.world, dict):
            raise TypeError(f"PretrainConfig.world must be a dict of WorldConfig fields, got {type(self.world).__name__}")
        try:  # the overrides' names and values, checked now rather than after the world is drawn
            WorldConfig.from_dict({**WorldConfig().to_dict(), **_IMAGE_ONLY, **self.world})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"PretrainConfig.world {self.world!r}: {exc}") from None

    def world_config(self, base: WorldConfig) -> WorldConfig:
        """The pretraining world: ``base`` with images only (no off-screen or ambient scenes,
        the shortest clips) and this config's ``world`` overrides."""
        fields = base.to_dict()
        fields.update(_IMAGE_ONLY)
        fields.update(self.world)
        return WorldConfig.from_dict(fields)


def classification_set(
    world: SyntheticWorld, n: int, start: int = 0, workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of scenes ``start .. start + n - 1`` of ``world``.

    Returns:
        ``uint8`` images ``[n, 3, H, W]`` (as a written PNG: 8 bits) and ``int64`` labels
        ``[n]``: the sounding object's class.

    Raises:
        ValueError: a scene without its object in view (build the world with
            ``offscreen_p`` and ``ambient_p`` at 0, as :meth:`PretrainConfig.world_config` does).
    """
    if n < 1 or start < 0:
        raise ValueError(f"n must be >= 1 and start >= 0, got n={n}, start={start}")
    size = world.config.image_size
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    for k, sc in enumerate(render_scenes(world, range(start, start + n), workers)):
        if sc.kind != "object":
            raise ValueError(f"scene {sc.index} of {world!r} is {sc.kind!r}: a classification image needs its object in view")
        images[k] = (sc.image * 255.0 + 0.5).to(torch.uint8)
        labels[k] = sc.label
    return images, labels


def _features(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Globally averaged feature map of ``uint8`` images."""
    return backbone(images.float().div_(255.0)).mean((2, 3))


def _encoder(backbone: nn.Module) -> Any:
    """How a stream turns a batch of its stored inputs into one vector per input: ``uint8``
    images through an image backbone, mean-pooled over the grid (:func:`_features`); float
    waveforms through a sound network, whose output already is one vector per clip."""
    return lambda x: _features(backbone, x) if x.dtype == torch.uint8 else backbone(x)


@torch.no_grad()
def accuracy(backbone: nn.Module, head: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``head`` over the stream's vectors of ``images`` (mean-pooled grid
    of an image backbone, or a sound network's feature of waveforms) in eval mode, then
    restored."""
    was = backbone.training, head.training
    backbone.eval()
    head.eval()
    encode = _encoder(backbone)
    device = next(head.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = head(encode(images[i:i + batch_size].to(device)))
        correct += int((logits.argmax(1).cpu() == labels[i:i + batch_size]).sum())
    backbone.train(was[0])
    head.train(was[1])
    return correct / len(images)


@torch.no_grad()
def recompute_batchnorm(backbone: nn.Module, images: torch.Tensor, batch_size: int = 256) -> int:
    """Replace every BatchNorm's running statistics by their cumulative average over ``images``
    (the stream's stored inputs: ``uint8`` images, or waveforms for a sound network).

    Returns the number of BatchNorm layers updated (0 for networks without, e.g. VGG16).
    """
    bns = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    device = next(backbone.parameters()).device
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was = backbone.training
    nn.Module.train(backbone, True)  # bypass a frozen backbone's eval-only train()
    encode = _encoder(backbone)
    for i in range(0, len(images), batch_size):
        encode(images[i:i + batch_size].to(device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    nn.Module.train(backbone, was)
    return len(bns)


def pretrain_visual(
    backbone: nn.Module,
    world_config: WorldConfig,
    config: PretrainConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``backbone`` (a :class:`~soundloc.models.SmallCNN` or
    :class:`~soundloc.models.VGG16Features`) as an image classifier on a synthetic world.

    The classifier is ``Linear(D, K)`` over the globally averaged ``[B, D, h, w]`` features;
    the loss is cross-entropy on the sounding object's class. The backbone is trained in
    place (it must not be frozen) and is left in eval mode on ``device``; the classifier head
    is discarded, as ImageNet's is when VGG16 becomes the paper's visual network.

    Args:
        backbone: the visual stream to train.
        world_config: the world the stream will be used on; the pretraining world is
            :meth:`PretrainConfig.world_config` of it, with seed ``seed + world_seed_offset``.
        config: :class:`PretrainConfig` (defaults when ``None``).
        seed: seeds the pretraining world, the head's initialisation, the batch order and flips.
        device: where to train.
        progress: a tqdm bar over epochs.

    Returns:
        A JSON-ready record: the pretraining world's config and seed, sizes, epochs, the final
        training loss, held-out and training accuracy, and seconds spent rendering / training.
    """
    config = PretrainConfig() if config is None else config
    if not isinstance(config, PretrainConfig):
        raise TypeError(f"config must be a PretrainConfig, got {type(config).__name__}")
    if getattr(backbone, "frozen", False) or not any(p.requires_grad for p in backbone.parameters()):
        raise ValueError("pretrain_visual needs a trainable backbone: pretrain first, then freeze")
    out_channels = getattr(backbone, "out_channels", None)
    if not isinstance(out_channels, int):
        raise TypeError("backbone must expose out_channels (SmallCNN or VGG16Features)")
    wc = config.world_config(world_config)
    world_seed = int(seed) + config.world_seed_offset
    world = SyntheticWorld(wc, seed=world_seed)

    t0 = time.perf_counter()
    x_train, y_train = classification_set(world, config.n_train, 0, config.workers)
    x_test, y_test = classification_set(world, config.n_test, config.n_train, config.workers)
    render_seconds = time.perf_counter() - t0

    record = _fit_classifier(backbone, out_channels, wc.num_classes, (x_train, y_train), (x_test, y_test), config,
                             seed, device, flip=config.flip, desc="pretraining the visual stream", progress=progress)
    return {"config": config.to_dict(), "world_config": wc.to_dict(), "world_seed": world_seed,
            "n_train": config.n_train, "n_test": config.n_test,
            "class_counts": np.bincount(y_train.numpy(), minlength=wc.num_classes).tolist(),
            **record, "render_seconds": render_seconds}


def _fit_classifier(backbone: nn.Module, dim: int, num_classes: int, train: tuple[torch.Tensor, torch.Tensor],
                    test: tuple[torch.Tensor, torch.Tensor], config: PretrainConfig, seed: int,
                    device: str | torch.device, flip: bool, desc: str, progress: bool) -> dict[str, Any]:
    """The classification training shared by both streams: ``Linear(dim, K)`` over the
    stream's vectors (:func:`_encoder`), cross-entropy, Adam with a cosine decay to zero over
    ``config.epochs``, batches drawn by a generator seeded with ``seed`` (which also draws the
    head's initial weights and, with ``flip``, random horizontal flips of images); then the
    BatchNorm statistics recomputed with the final weights. The stream is left in eval mode."""
    x_train, y_train = train
    gen = torch.Generator().manual_seed(int(seed))
    backbone.to(device).train()
    head = nn.Linear(dim, num_classes)
    with torch.no_grad():  # the head's initialisation from the seeded generator
        bound = 1.0 / math.sqrt(dim)
        head.weight.copy_(torch.rand(head.weight.shape, generator=gen) * 2 * bound - bound)
        head.bias.copy_(torch.rand(head.bias.shape, generator=gen) * 2 * bound - bound)
    head.to(device)
    encode = _encoder(backbone)
    params = [p for p in backbone.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    n = len(x_train)
    steps_per_epoch = n // config.batch_size
    total = config.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, total) / total)))
    t1 = time.perf_counter()
    losses: list[float] = []
    bar = progress_bar(range(config.epochs), progress, desc=desc, leave=False)
    for _ in bar:
        perm = torch.randperm(n, generator=gen)
        running = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = perm[step * config.batch_size:(step + 1) * config.batch_size]
            x = x_train[idx]
            if flip:
                flipped = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flipped[:, None, None, None], x.flip(3), x)
            loss = nn.functional.cross_entropy(head(encode(x.to(device))), y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.detach()
        losses.append(float(running) / steps_per_epoch)
        if progress:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    n_bn = recompute_batchnorm(backbone, x_train)
    train_seconds = time.perf_counter() - t1
    record = {"epochs": config.epochs, "steps": total, "epoch_losses": losses,
              "test_accuracy": accuracy(backbone, head, *test),
              "train_accuracy_first_1000": accuracy(backbone, head, x_train[:1000], y_train[:1000]),
              "batchnorm_layers_recomputed": n_bn, "train_seconds": train_seconds}
    backbone.eval()
    return record


#: The settings of each stream that its pretrained weights depend on.
_STREAM_SETTINGS = {
    "visual": ("visual_backbone", "visual_width", "visual_dim", "visual_stride", "normalize_image", "pretrained"),
    "sound": ("sound_variant", "sound_width", "sound_dim", "waveform_scale", "clip_samples", "short_clip_padding",
              "sample_rate"),
}


def pretrain_key(config: PretrainConfig, world_config: WorldConfig, model_config: ModelConfig, seed: int,
                 stream: str = "visual") -> str:
    """A digest of everything a pretrained stream depends on: the pretraining config (not
    ``workers``), the pretraining world and its seed, the stream's network settings and torch's
    version."""
    settings = {k: getattr(model_config, k) for k in _STREAM_SETTINGS[stream]}
    pre = {k: v for k, v in config.to_dict().items() if k != "workers"}
    world = (config.world_config(world_config) if stream == "visual" else sound_world_config(config, world_config))
    blob = json.dumps({"pretrain": pre, "world": world.to_dict(), "world_seed": seed + config.world_seed_offset,
                       "seed": seed, stream: settings, "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sound_world_config(config: PretrainConfig, base: WorldConfig) -> WorldConfig:
    """The sound pretraining's world: ``base`` (its clip length kept) with every scene's sound
    coming from its visible object (no off-screen or ambient scenes) and ``config.world``'s
    overrides."""
    return WorldConfig.from_dict({**base.to_dict(), "offscreen_p": 0.0, "ambient_p": 0.0, **config.world})


def clip_set(world: SyntheticWorld, n: int, start: int = 0, workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms ``[n, T]`` (float32) and labels ``[n]`` (the sound's class) of scenes
    ``start .. start + n - 1`` of ``world``."""
    if n < 1 or start < 0:
        raise ValueError(f"n must be >= 1 and start >= 0, got n={n}, start={start}")
    clips = torch.empty(n, world.config.clip_samples, dtype=torch.float32)
    labels = torch.empty(n, dtype=torch.long)
    for k, sc in enumerate(render_scenes(world, range(start, start + n), workers)):
        clips[k], labels[k] = sc.waveform, sc.label
    return clips, labels


def pretrain_sound(sound: nn.Module, world_config: WorldConfig, config: PretrainConfig, seed: int = 0,
                   device: str | torch.device = "cpu", progress: bool = False) -> dict[str, Any]:
    """Train the sound network ``sound`` as a classifier of the sound's class on the clips of
    a world of another seed (:func:`sound_world_config`, seed ``seed + world_seed_offset``):
    the synthetic world's SoundNet. SoundNet (Aytar et al., 2016) learned object and scene
    categories from a visual teacher's class posteriors; here the class labels stand for that
    teacher. Same loop as :func:`pretrain_visual` (:func:`_fit_classifier`, no flips); returns
    its record."""
    if not any(p.requires_grad for p in sound.parameters()):
        raise ValueError("pretrain_sound needs a trainable sound network: pretrain first, then freeze")
    wc = sound_world_config(config, world_config)
    world_seed = int(seed) + config.world_seed_offset
    world = SyntheticWorld(wc, seed=world_seed)
    t0 = time.perf_counter()
    train = clip_set(world, config.n_train, 0, config.workers)
    test = clip_set(world, config.n_test, config.n_train, config.workers)
    render_seconds = time.perf_counter() - t0
    dim = int(sound.objects_dim)
    record = _fit_classifier(sound, dim, wc.num_classes, train, test, config, seed, device, flip=False,
                             desc="pretraining the sound stream", progress=progress)
    return {"config": config.to_dict(), "world_config": wc.to_dict(), "world_seed": world_seed,
            "n_train": config.n_train, "n_test": config.n_test, **record, "render_seconds": render_seconds}


def pretrained_sound_state(model_config: ModelConfig, world_config: WorldConfig, config: PretrainConfig, seed: int,
                           device: str | torch.device = "cpu", cache_dir: str | os.PathLike[str] | None = None,
                           progress: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The sound stream of ``model_config`` pretrained by :func:`pretrain_sound`, as a state
    dict, with its record; cached as :func:`pretrained_visual_state` caches the visual one
    (``cache_dir/sound_<key>.pt``)."""
    return _pretrained_state("sound", model_config, world_config, config, seed, device, cache_dir, progress)


def pretrained_visual_state(
    model_config: ModelConfig,
    world_config: WorldConfig,
    config: PretrainConfig,
    seed: int,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The visual stream of ``model_config`` pretrained by :func:`pretrain_visual`, as a state
    dict, with the pretraining's record.

    The stream starts from the weights :func:`~soundloc.models.build_model` gives after
    ``seed_everything(seed)`` (the same initial weights as the experiment's models). With
    ``cache_dir``, a stream pretrained with an identical :func:`pretrain_key` is read from
    ``cache_dir/visual_<key>.pt`` instead (the record then says ``reused_from``), and a new
    one is written there (atomically), as ImageNet weights are downloaded once.
    """
    return _pretrained_state("visual", model_config, world_config, config, seed, device, cache_dir, progress)


def _pretrained_state(stream: str, model_config: ModelConfig, world_config: WorldConfig, config: PretrainConfig,
                      seed: int, device: str | torch.device, cache_dir: str | os.PathLike[str] | None,
                      progress: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    key = pretrain_key(config, world_config, model_config, seed, stream)
    cached = Path(cache_dir) / f"{stream}_{key}.pt" if cache_dir else None
    if cached is not None and cached.is_file():
        saved = torch.load(cached, map_location="cpu", weights_only=True)
        return saved["state_dict"], dict(saved["pretraining"], reused_from=str(cached))
    seed_everything(seed)
    net = getattr(build_model(model_config), stream)
    if stream == "visual":
        net.frozen = False
    for p in net.parameters():
        p.requires_grad_(True)
    train = pretrain_visual if stream == "visual" else pretrain_sound
    record = train(net, world_config, config, seed=seed, device=device, progress=progress)
    record["key"] = key
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    if cached is not None:
        with atomic_path(cached) as tmp:
            torch.save({"state_dict": state, "pretraining": record}, tmp)
    return state, record


__all__ = [
    "PretrainConfig",
    "accuracy",
    "classification_set",
    "clip_set",
    "pretrain_key",
    "pretrain_sound",
    "pretrain_visual",
    "pretrained_sound_state",
    "pretrained_visual_state",
    "sound_world_config",
    "recompute_batchnorm",
]
