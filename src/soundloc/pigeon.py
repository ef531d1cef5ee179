"""The pigeon superstition, reproduced on the synthetic world.

Senocak et al. (CVPR 2018, Sec. 4-5 and Fig. 5-6) observe that the unsupervised model
(triplet loss L_U, Sec. 3.2) sometimes attends to what *co-occurs* with a sound rather than to
its source -- the rails, not the train -- and that a small amount of supervision (L_S, Sec. 3.3)
corrects it. Like Skinner's pigeons, the model repeats whatever happened to come with the
reward: any region whose appearance predicts the sound satisfies L_U, and attention settles on
the cue that is easiest to learn.

:func:`run_pigeon` shows this on :mod:`soundloc.data.synthetic`'s "ground band" world: the
sounding object's class is carried by its shape (its colour is random), a textured ground band
shows the same class with probability ``context_p`` (0.9), and silent objects of independently
drawn classes stand in the background. It trains the three schemes of the paper's Table 1 --
``unsupervised``, ``supervised`` (L_S on the labelled pairs only) and ``semi_supervised``
(L_U + L_S) -- from the *same* initial weights, with the same seed and the same number of
epochs, evaluates them on held-out annotated scenes with :mod:`soundloc.metrics` (LVS protocol:
cIoU@0.5 and AUC, with the random / whole-image / centre baselines) and measures where the
attention mass goes.

Attention mass and density. The mass on a region is ``Σ_i α_i c_i`` with ``c_i`` the fraction
of grid cell ``i`` the region covers; a uniform map puts on every region exactly its area
fraction, so masses of regions of different sizes are not comparable. The *density* divides
the mass by the region's area fraction (1 = chance). The superstition is the context's density
above the object's; the fix is the object's above the context's. Both are measured on the test
scenes where the object is visible (kind ``"object"``); the object region is the source's true
box and the context region is the ground band outside it.

Visual stream. In the paper the visual network is VGG16 pretrained on ImageNet and frozen.
The experiment does the same by default: :func:`soundloc.pretrain.pretrain_visual` first
trains the small CNN as an image classifier on a world of another seed (class labels only, the
same co-occurrence statistics, like an ImageNet whose trains stand on rails), then every scheme
starts from it with the stream frozen (``model["freeze_visual"]``). ``visual_pretraining=None``
with ``freeze_visual=False`` trains the stream from scratch with the rest of the model (the
setup of the library's first version); ``freeze_visual=False`` with pretraining fine-tunes it.
The three give different unsupervised models, which is part of what the book shows.

Temperature. The paper's softmax has no temperature (``ModelConfig.temperature = 1``, the
library's default). Over cosines in [-1, 1] the largest ratio between two cells' α is e², so the
map stays near uniform and mass readings flatten (a prototype trained that way stayed at chance
density). The experiment therefore uses τ = 0.1 (``PigeonConfig.model["temperature"]``); the
choice is recorded in ``results.json``. The metrics (cIoU, AUC) rank cells and are unaffected
by a monotone rescaling of the map.

What it shows at the smoke scale (seeds 0, 1, 2; ``benchmarks/pigeon_smoke_results.md``): the
supervised and semi-supervised models localize the source with every visual stream (cIoU@0.5
0.95-1.00, object density about 2, context about 0.5). The unsupervised model sits on a knife
edge between the band and the object: on some seeds its attention density on the band is well
above that on the object (the superstition), on others both are above chance and the object
slightly ahead. Where the superstition is strong the object is avoided, and since a map that
favours a region outside the source keeps fewer source pixels than a random one, the
unsupervised AUC then falls to or below the random baseline's.

Ambient test scenes (about 5 %) are scored by cIoU/AUC like the others (their boxes cover the
band, as an annotator would box an ambient source); attention masses are measured only on the
scenes whose sounding object is visible.

Budget. Every scheme starts from the same weights (seeded by ``seed``) and trains for the same
number of epochs with the same optimizer over *its* training pairs: the unsupervised and
semi-supervised schemes over all ``n_train`` scenes, the supervised one over the ``n_labelled``
annotated scenes only (the paper's supervised model sees only annotated pairs), so it takes
fewer steps.

Scales (:meth:`PigeonConfig.at_scale`):

- ``"tiny"``: tests and quick chapter runs (seconds): 240 scenes, 2 epochs, a narrower CNN
  (width 16). Too small for the phenomenon to be reliable; nothing is claimed at this scale.
- ``"smoke"``: the CPU scale (about 5-6 minutes for the pretraining and the three schemes on
  2 cores): 64×64 images, 8×8 grid, ``ModelConfig.cpu()`` (SmallCNN width 32, stride 8;
  short-clip SoundNet) with τ = 0.1, 0.5 s clips (the short SoundNet variant needs at least
  0.42 s), 3,000 training scenes of which 300 labelled, 300 held out, 8 epochs, batch 32, Adam
  lr 1e-3; the visual stream pretrained on 8,000 images for 5 epochs and frozen.
- ``"full"``: GPU-sized: 128×128 images (16×16 grid), 8 classes, 1 s clips, wider networks,
  20,000 scenes with 2,500 labelled (the paper's "Sup. 2.5k"), 20 epochs, the visual stream
  pretrained on 20,000 images. On one H200 with ``workers=12`` the world renders in 18 s and
  pretraining takes under a minute; the three schemes at 8 epochs took 2.3 minutes
  (``book/results/pigeon_full_gpu/``).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundloc.config import ConfigMixin
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, world_splits
from soundloc.utils import read_json

#: The three learning schemes, in the paper's order (Table 1).
SCHEMES = ("unsupervised", "supervised", "semi_supervised")
#: Named scales of :meth:`PigeonConfig.at_scale`.
SCALES = ("tiny", "smoke", "full")
RESULTS_FILE = "results.json"
#: Baselines printed beside the schemes (besides random maps, which has its own row).
PRINTED_BASELINES = ("whole image", "centre prior")


@dataclass
class PigeonConfig(ConfigMixin):
    """Everything the pigeon experiment depends on (plain types; stored in ``results.json``).

    Attributes:
        scale: the preset's name (informative).
        world: :class:`WorldConfig` fields (overrides of its defaults).
        n_train: training scenes (unlabelled video: every kind of scene).
        n_labelled: annotated training scenes whose boxes the supervised and semi-supervised
            schemes may use (the first ``n_labelled`` annotated training scenes).
        n_test: held-out scenes (the annotated ones among them are the test set).
        model: :class:`~soundloc.models.ModelConfig` fields on top of ``ModelConfig.cpu()``
            (``temperature`` 0.1 and ``freeze_visual``: see the module docstring).
        visual_pretraining: :class:`~soundloc.pretrain.PretrainConfig` fields: the visual
            stream is first pretrained as an image classifier on a world of another seed
            (:func:`soundloc.pretrain.pretrain_visual`), then every scheme starts from it;
            ``None`` trains the visual stream from scratch with the rest of the model.
        epochs: epochs of every scheme (the same budget for all three).
        batch_size, lr, weight_decay, optimizer: as :class:`~soundloc.train.TrainConfig`.
        annotator: how L_S's ground truth is drawn (``"random"``: one annotator per step, as
            the authors do).
        n_figure_examples: test scenes shown in the attention figure.
        random_repeats: draws of the random baseline.
        device: ``None`` = GPU when visible, else CPU.
        threads: torch CPU threads (``None`` leaves torch's default).
        workers: processes that render the world's scenes (0: in this process; the result
            does not depend on it).
        pretrain_cache: a folder where pretrained visual streams are kept and reused by any
            later run whose pretraining would be identical (same pretraining world and seed,
            same pretraining config, same visual network), as ImageNet weights are downloaded
            once; ``None``: always pretrain.
    """

    scale: str = "smoke"
    world: dict[str, Any] = field(default_factory=dict)
    n_train: int = 3000
    n_labelled: int = 300
    n_test: int = 300
    model: dict[str, Any] = field(default_factory=lambda: {"temperature": 0.1, "freeze_visual": True})
    visual_pretraining: dict[str, Any] | None = field(default_factory=dict)
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    annotator: str = "random"
    n_figure_examples: int = 6
    random_repeats: int = 10
    device: str | None = None
    threads: int | None = None
    workers: int = 0
    pretrain_cache: str | None = None

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "epochs", "batch_size", "n_figure_examples", "random_repeats"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if isinstance(self.n_labelled, bool) or not isinstance(self.n_labelled, int) or not 2 <= self.n_labelled <= self.n_train:
            raise ValueError(f"n_labelled must be an int in [2, n_train], got {self.n_labelled!r}")
        if self.n_labelled < self.batch_size:
            raise ValueError(f"n_labelled ({self.n_labelled}) must be >= batch_size ({self.batch_size}) for the supervised scheme")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be None or a positive int, got {self.threads!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {self.workers!r}")
        self.world_config()  # validates
        self.model_config()
        self.pretrain_config()

    @classmethod
    def at_scale(cls, scale: str, **overrides: Any) -> "PigeonConfig":
        """The named preset (``"tiny"``, ``"smoke"`` or ``"full"``) with ``overrides``."""
        presets: dict[str, dict[str, Any]] = {
            # tests and quick chapter runs: small world, one short training per scheme
            "tiny": dict(n_train=240, n_labelled=48, n_test=48, epochs=2, batch_size=16,
                         world={"clip_seconds": 0.5},
                         model={"temperature": 0.1, "visual_width": 16, "freeze_visual": True},
                         visual_pretraining={"n_train": 480, "n_test": 96, "epochs": 2, "batch_size": 32},
                         n_figure_examples=3, random_repeats=3),
            # the CPU scale of the issue (2 cores): what the book's table reports
            "smoke": dict(n_train=3000, n_labelled=300, n_test=300, epochs=8, batch_size=32,
                          world={"clip_seconds": 0.5}, model={"temperature": 0.1, "freeze_visual": True},
                          visual_pretraining={}),
            # GPU-sized: 128x128 images (16x16 grid), wider networks, more data and epochs
            "full": dict(
                n_train=20000, n_labelled=2500, n_test=500, epochs=20, batch_size=64, lr=3e-4,
                world={"image_size": 128, "num_classes": 8, "clip_seconds": 1.0},
                model={"temperature": 0.1, "image_size": 128, "visual_width": 64, "visual_dim": 256,
                       "sound_width": 0.5, "sound_dim": 256, "sound_hidden": 256, "visual_hidden": 256,
                       "freeze_visual": True},
                visual_pretraining={"n_train": 20000, "n_test": 2000, "epochs": 8, "batch_size": 128},
            ),
        }
        if scale not in presets:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        kw: dict[str, Any] = {"scale": scale, **presets[scale]}
        kw.update(overrides)
        return cls(**kw)

    def world_config(self) -> WorldConfig:
        return WorldConfig.from_dict(dict(self.world))

    def model_config(self) -> Any:
        from soundloc.models import ModelConfig

        wc = self.world_config()
        base = {"image_size": wc.image_size, "clip_samples": wc.clip_samples}
        base.update(self.model)
        return ModelConfig.cpu(**base)

    def pretrain_config(self) -> Any:
        """The :class:`~soundloc.pretrain.PretrainConfig`, or ``None`` (from scratch)."""
        if self.visual_pretraining is None:
            return None
        from soundloc.pretrain import PretrainConfig

        if not isinstance(self.visual_pretraining, dict):
            raise TypeError(f"visual_pretraining must be a dict of PretrainConfig fields or None, "
                            f"got {type(self.visual_pretraining).__name__}")
        kw = {"workers": self.workers, **self.visual_pretraining}
        return PretrainConfig.from_dict(kw)

    def train_config(self, scheme: str, seed: int) -> Any:
        from soundloc.train import TrainConfig

        return TrainConfig(
            scheme=scheme, epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer,
            lr=self.lr, weight_decay=self.weight_decay, device=self.device, seed=seed, progress=True,
            num_workers=self.workers,
        )



# ---------------------------------------------------------------------------------------------
# Measuring where the attention goes
# ---------------------------------------------------------------------------------------------


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
    cover = torch.nn.functional.adaptive_avg_pool2d(mask[:, None].float(), (h, w))[:, 0]
    return (attention.float() * cover).flatten(1).sum(1)


def region_density(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mass per unit area: :func:`region_mass` ÷ the region's area fraction (1 = chance).

    Regions with zero area give NaN.
    """
    area = mask.float().flatten(1).mean(1)
    mass = region_mass(attention, mask)
    return torch.where(area > 0, mass / area.clamp_min(1e-12), torch.full_like(mass, float("nan")))


def attention_summary(attention: torch.Tensor, object_mask: torch.Tensor, context_mask: torch.Tensor) -> dict[str, float]:
    """Mean mass and mean density on the object and on the context (NaN-free inputs assumed)."""
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
    """The random baseline's maps as attention: :func:`soundloc.metrics.random_maps` drawn from
    ``seed`` (the maps the metrics' random baseline scores first), normalised to sum 1."""
    from soundloc.metrics import random_maps

    maps = random_maps(n, tuple(grid), torch.Generator().manual_seed(seed))
    return maps / maps.flatten(1).sum(1)[:, None, None]


# ---------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------


def _library_version() -> str:
    from soundloc import __version__

    return __version__


def _scheme_scores(evaluation: Any) -> dict[str, float]:
    return {"ciou_at_0.5": float(evaluation.success), "auc": float(evaluation.auc)}


def run_pigeon(
    config: PigeonConfig | None = None,
    out_dir: str | os.PathLike[str] = "pigeon",
    seed: int = 0,
    command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the three schemes on the synthetic world and measure the superstition.

    Writes into ``out_dir``: ``results.json`` (atomically; see below), ``models/<scheme>.pt``
    (:func:`soundloc.models.save_model`, with the train config and history), and figures
    ``attention.png`` (test scenes, one column per scheme) and ``training_curves.png``.

    ``results.json`` holds ``schemes``: for ``unsupervised``, ``supervised``,
    ``semi_supervised`` and the ``random`` baseline, ``ciou_at_0.5``, ``auc``,
    ``attention_on_object`` / ``attention_on_context`` (mean mass) and ``object_density`` /
    ``context_density`` (mean mass ÷ area fraction); ``baselines`` (whole image, centre prior,
    random with its spread); ``targets`` (the issue's three checks, judged on densities);
    ``config``, ``model_config``, ``seed``, ``timings``, ``version``, ``device``, ``date``,
    ``command``, ``test`` (test-set composition). Same seed and config -> same numbers (on the
    same machine); only the timings and date differ.
    """
    from soundloc.metrics import evaluate
    from soundloc.models import build_model
    from soundloc.train import Trainer, predict_attention, save_trained
    from soundloc.utils import default_device, seed_everything, write_json

    if config is None:
        config = PigeonConfig.at_scale("smoke")
    if not isinstance(config, PigeonConfig):
        raise TypeError(f"config must be a PigeonConfig, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = config.device or default_device()
    t_start = time.perf_counter()

    # --- the world and its splits
    world = SyntheticWorld(config.world_config(), seed=seed)
    model_cfg = config.model_config()
    probe = build_model(model_cfg)
    grid = probe.grid_size(world.config.image_size, world.config.image_size)
    del probe
    n_total = config.n_train + config.n_test
    splits = world_splits(world, n_total, config.n_test, config.n_labelled)
    base = SyntheticDataset(world, splits.train, grid=grid, annotator=config.annotator, labelled=splits.labelled, seed=seed)
    t0 = time.perf_counter()
    base.subset(list(splits.train) + list(splits.test)).prefetch(config.workers, progress, "generating the world")
    test_set = base.subset(splits.test, labelled=False, grid=None)
    test_scenes = [test_set.scene(k) for k in range(len(test_set))]
    timings: dict[str, float] = {"generate_world": time.perf_counter() - t0}

    # --- the visual stream, pretrained once as an image classifier (the paper's ImageNet VGG16)
    pretraining = None
    visual_state: dict[str, torch.Tensor] | None = None
    (out / "models").mkdir(exist_ok=True)
    pre_cfg = config.pretrain_config()
    if pre_cfg is not None:
        from soundloc.pretrain import pretrain_visual
        from soundloc.utils import atomic_path

        t0 = time.perf_counter()
        key = _pretrain_key(pre_cfg, world.config, model_cfg, seed)
        cached = Path(config.pretrain_cache) / f"visual_{key}.pt" if config.pretrain_cache else None
        if cached is not None and cached.is_file():
            saved = torch.load(cached, map_location="cpu", weights_only=True)
            visual_state, pretraining = saved["state_dict"], dict(saved["pretraining"], reused_from=str(cached))
        else:
            seed_everything(seed)  # the same initial visual weights as the schemes' models
            visual = build_model(model_cfg).visual
            visual.frozen = False
            for p in visual.parameters():
                p.requires_grad_(True)
            pretraining = pretrain_visual(visual, world.config, pre_cfg, seed=seed, device=device, progress=progress)
            pretraining["key"] = key
            visual_state = {k: v.detach().cpu().clone() for k, v in visual.state_dict().items()}
            del visual
            if cached is not None:
                with atomic_path(cached) as tmp:
                    torch.save({"state_dict": visual_state, "pretraining": pretraining}, tmp)
        timings["pretrain_visual"] = time.perf_counter() - t0
        with atomic_path(out / "models" / "visual_pretrained.pt") as tmp:
            torch.save({"state_dict": visual_state, "pretraining": pretraining}, tmp)
        if progress:
            print(f"[pigeon seed {seed}] visual stream pretrained: held-out accuracy "
                  f"{pretraining['test_accuracy']:.3f} ({timings['pretrain_visual']:.0f} s)", file=sys.stderr)
    unlabelled = base.subset(splits.train, labelled=False)

    annotations = [s.annotation for s in test_scenes]
    ids = [s.id for s in test_scenes]
    visible = torch.tensor([s.kind == "object" for s in test_scenes])
    obj_masks = torch.stack([s.object_mask for s in test_scenes])
    ctx_masks = torch.stack([s.context_mask for s in test_scenes])

    schemes: dict[str, dict[str, Any]] = {}
    maps_by_scheme: dict[str, torch.Tensor] = {}
    histories: dict[str, list[dict[str, Any]]] = {}
    evaluation = None
    for scheme in SCHEMES:
        seed_everything(seed)  # the same initial weights for every scheme
        model = build_model(model_cfg)
        if visual_state is not None:
            model.visual.load_state_dict(visual_state)
        train_cfg = dataclasses.replace(config.train_config(scheme, seed), device=device, progress=progress)
        data = unlabelled if scheme == "unsupervised" else base
        t0 = time.perf_counter()
        trainer = Trainer(model, train_cfg)
        history = trainer.fit(data)
        timings[f"train_{scheme}"] = time.perf_counter() - t0
        save_trained(out / "models" / f"{scheme}.pt", trainer, extra={"world_seed": seed, "scale": config.scale})
        got_ids, maps = predict_attention(model, test_set, batch_size=64)
        if got_ids != ids:
            raise RuntimeError("predict_attention returned the test pairs in another order")
        evaluation = evaluate(maps, annotations, ids=ids, baselines=scheme == SCHEMES[0], seed=seed,
                              random_repeats=config.random_repeats, random_grid=tuple(grid), per_annotator=True,
                              name=scheme)
        if scheme == SCHEMES[0]:
            baselines = {k: v.to_dict() for k, v in evaluation.baselines.items()}
        row = _scheme_scores(evaluation)
        row.update(attention_summary(maps[visible], obj_masks[visible], ctx_masks[visible]))
        row["per_annotator_mean_success"] = float(evaluation.annotators.mean_success) if evaluation.annotators else None
        row["train_seconds"] = timings[f"train_{scheme}"]
        row["final_loss"] = history[-1]["loss"] if history else None
        schemes[scheme] = row
        maps_by_scheme[scheme] = maps
        histories[scheme] = history
        if progress:
            print(f"[pigeon seed {seed}] {scheme}: " + ", ".join(
                f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float)), file=sys.stderr)

    # --- the random baseline, measured the same way (uniform values on the model's grid)
    rnd = baselines["random"]
    rmaps = random_attention(len(test_scenes), tuple(grid), seed)
    rrow: dict[str, Any] = {"ciou_at_0.5": rnd["success"], "auc": rnd["auc"],
                            "ciou_at_0.5_std": rnd["success_std"], "auc_std": rnd["auc_std"]}
    rrow.update(attention_summary(rmaps[visible], obj_masks[visible], ctx_masks[visible]))
    schemes["random"] = rrow

    u, s_, r = schemes["unsupervised"], schemes["semi_supervised"], schemes["random"]
    targets = {
        "unsupervised_context_density_above_object": bool(u["context_density"] > u["object_density"]),
        "semi_supervised_ciou_gain_at_least_0.25": bool(s_["ciou_at_0.5"] - u["ciou_at_0.5"] >= 0.25),
        "semi_supervised_object_density_above_context": bool(s_["object_density"] > s_["context_density"]),
        "every_scheme_auc_above_random": bool(all(schemes[k]["auc"] > r["auc"] for k in SCHEMES)),
    }
    timings["total"] = time.perf_counter() - t_start
    kinds = [s.kind for s in test_scenes]
    results: dict[str, Any] = {
        "experiment": "pigeon superstition (Senocak et al., CVPR 2018, Sec. 4-5) on the synthetic world",
        "schemes": schemes,
        "baselines": baselines,
        "targets": targets,
        "all_targets_met": bool(all(targets.values())),
        "seed": seed,
        "scale": config.scale,
        "config": config.to_dict(),
        "world_config": world.config.to_dict(),
        "model_config": model_cfg.to_dict(),
        "temperature": model_cfg.temperature,
        "visual_stream": _visual_stream_label(model_cfg, pretraining),
        "visual_pretraining": pretraining,
        "grid": list(grid),
        "protocol": evaluation.protocol.describe() if evaluation else None,
        "test": {"n": len(test_scenes), "object": kinds.count("object"), "ambient": kinds.count("ambient"),
                 "masses_measured_on": "test scenes of kind 'object'"},
        "train": {"n": len(splits.train), "labelled": len(splits.labelled)},
        "histories": histories,
        "timings": timings,
        "version": _library_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if str(device).startswith("cuda") else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else f"soundloc.pigeon.run_pigeon(<{config.scale} config>, seed={seed})",
    }
    _write_figures(out, test_scenes, maps_by_scheme, histories, config.n_figure_examples)
    write_json(out / RESULTS_FILE, _json_safe(results))
    return results


def _pretrain_key(pre_cfg: Any, world_config: WorldConfig, model_cfg: Any, seed: int) -> str:
    """A digest of everything a pretrained visual stream depends on (not ``workers``)."""
    import hashlib
    import json

    visual = {k: getattr(model_cfg, k) for k in ("visual_backbone", "visual_width", "visual_dim", "visual_stride",
                                                  "normalize_image", "pretrained")}
    pre = {k: v for k, v in pre_cfg.to_dict().items() if k != "workers"}
    blob = json.dumps({"pretrain": pre, "world": pre_cfg.world_config(world_config).to_dict(),
                       "world_seed": seed + pre_cfg.world_seed_offset, "seed": seed, "visual": visual,
                       "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _visual_stream_label(model_cfg: Any, pretraining: dict[str, Any] | None) -> str:
    """A short description of the visual stream, for tables."""
    if pretraining is None:
        return "from scratch" + (" (frozen: random features)" if model_cfg.freeze_visual else "")
    p = pretraining["world_config"]["context_p"]
    how = "frozen" if model_cfg.freeze_visual else "fine-tuned"
    return f"pretrained (context_p {p:g}), {how}"


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf floats by None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _write_figures(
    out: Path, scenes: list[Any], maps: dict[str, torch.Tensor], histories: dict[str, list[dict[str, Any]]], n_examples: int
) -> None:
    """``attention.png`` (scenes × schemes) and ``training_curves.png``, through soundloc.viz."""
    from soundloc import viz

    chosen = [k for k, s in enumerate(scenes) if s.kind == "object"][:n_examples] or list(range(min(n_examples, len(scenes))))
    fig = viz.attention_grid(
        torch.stack([scenes[k].image for k in chosen]),
        {name.replace("_", "-"): m[chosen] for name, m in maps.items()},
        titles=[f"class {scenes[k].label}, band {scenes[k].context_label}" for k in chosen],
        annotations=[scenes[k].annotation for k in chosen],
    )
    viz.save_figure(fig, out / "attention.png", close=True)
    fig = viz.plot_history(histories, keys=("loss", "l_u", "l_s"))
    viz.save_figure(fig, out / "training_curves.png", close=True)


def load_results(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``out_dir/results.json`` written by :func:`run_pigeon`.

    Raises:
        FileNotFoundError: no results file; ValueError: not valid JSON or missing ``schemes``.
    """
    path = Path(out_dir) / RESULTS_FILE if Path(out_dir).is_dir() or not str(out_dir).endswith(".json") else Path(out_dir)
    data = read_json(path, f"pigeon results file (run `soundloc pigeon --out {out_dir}`)")
    if not isinstance(data, dict) or "schemes" not in data:
        raise ValueError(f"{path}: not a pigeon results file (no 'schemes')")
    return data


def load_runs(folder: str | os.PathLike[str], pattern: str = "seed*") -> list[dict[str, Any]]:
    """:func:`load_results` of every run folder in ``folder`` whose name matches ``pattern``
    (sorted by name); an empty list when there is none."""
    return [load_results(p.parent) for p in sorted(Path(folder).glob(f"{pattern}/{RESULTS_FILE}"))]


def format_results(results: dict[str, Any]) -> str:
    """A plain-text table of one run: per scheme cIoU@0.5, AUC, masses and densities."""
    lines = [
        f"pigeon superstition, seed {results.get('seed')}, scale {results.get('scale')}, "
        f"temperature {results.get('temperature')}",
        f"{'scheme':<16}{'cIoU@0.5':>9}{'AUC':>7}{'mass obj':>10}{'mass ctx':>10}{'dens obj':>10}{'dens ctx':>10}{'train s':>9}",
    ]
    for name in (*SCHEMES, "random"):
        r = results["schemes"].get(name)
        if r is None:
            continue
        secs = r.get("train_seconds")
        lines.append(
            f"{name:<16}{r['ciou_at_0.5']:>9.3f}{r['auc']:>7.3f}{r['attention_on_object']:>10.3f}"
            f"{r['attention_on_context']:>10.3f}{r['object_density']:>10.2f}{r['context_density']:>10.2f}"
            f"{(f'{secs:.0f}' if secs is not None else '-'):>9}"
        )
    for name in PRINTED_BASELINES:
        b = results.get("baselines", {}).get(name)
        if b is not None:
            lines.append(f"{name:<16}{b['success']:>9.3f}{b['auc']:>7.3f}{'(no attention map: a kept-pixel baseline)':>50}")
    for k, v in results.get("targets", {}).items():
        lines.append(f"  target {k}: {'met' if v else 'NOT met'}")
    return "\n".join(lines)


def summarize(runs: list[dict[str, Any]]) -> str:
    """A plain-text table over several runs (e.g. seeds): one row per seed and scheme, then
    the mean ± standard deviation over the runs, then which targets each run meets.

    ``runs`` are :func:`load_results` / :func:`run_pigeon` dictionaries.
    """
    if not runs:
        raise ValueError("summarize needs at least one run")
    keys = ("ciou_at_0.5", "auc", "object_density", "context_density")
    head = f"{'seed':>4}  {'scheme':<16}{'cIoU@0.5':>9}{'AUC':>7}{'dens obj':>10}{'dens ctx':>10}"
    lines = [f"pigeon superstition, scale {runs[0].get('scale')}, {len(runs)} run(s)", head]
    for r in runs:
        for name in (*SCHEMES, "random"):
            row = r["schemes"].get(name)
            if row is not None:
                lines.append(f"{r.get('seed')!s:>4}  {name:<16}" + "".join(
                    f"{row[k]:>{w}.{d}f}" for k, w, d in zip(keys, (9, 7, 10, 10), (3, 3, 2, 2))))
    for r in runs:
        for name in PRINTED_BASELINES:
            b = r.get("baselines", {}).get(name)
            if b is not None:
                lines.append(f"{r.get('seed')!s:>4}  {name:<16}{b['success']:>9.3f}{b['auc']:>7.3f}")
    lines.append("mean ± std over runs")
    for name in (*SCHEMES, "random"):
        vals = [[r["schemes"][name][k] for r in runs if name in r["schemes"]] for k in keys]
        if not vals[0]:
            continue
        cells = "".join(f"  {np.mean(v):.3f}±{np.std(v):.3f}" for v in vals)
        lines.append(f"      {name:<16}{cells}")
    for r in runs:
        met = [k for k, v in r.get("targets", {}).items() if v]
        missed = [k for k, v in r.get("targets", {}).items() if not v]
        lines.append(f"seed {r.get('seed')}: targets met {len(met)}/{len(met) + len(missed)}"
                     + (f"; not met: {', '.join(missed)}" if missed else ""))
    return "\n".join(lines)


def compare(groups: dict[str, list[dict[str, Any]]]) -> str:
    """A plain-text table comparing setups (e.g. visual streams), each over several seeds.

    For every group: the unsupervised model's mean object and context densities and AUC, the
    random baseline's mean AUC, the semi-supervised cIoU@0.5 gain over the unsupervised model,
    and, per target, on how many of the group's runs it holds.
    """
    if not groups or any(not runs for runs in groups.values()):
        raise ValueError("compare needs at least one group, each with at least one run")
    names = list(next(iter(groups.values()))[0].get("targets", {}))
    head = (f"{'setup':<34}{'runs':>5}{'unsup dens obj':>16}{'unsup dens ctx':>16}{'unsup AUC':>11}"
            f"{'random AUC':>12}{'semi gain':>11}")
    lines = [head]
    for label, runs in groups.items():
        u = [r["schemes"]["unsupervised"] for r in runs]
        s_ = [r["schemes"]["semi_supervised"] for r in runs]
        rnd = [r["schemes"]["random"]["auc"] for r in runs]
        gain = [b["ciou_at_0.5"] - a["ciou_at_0.5"] for a, b in zip(u, s_)]
        lines.append(
            f"{label:<34}{len(runs):>5}{np.mean([x['object_density'] for x in u]):>16.2f}"
            f"{np.mean([x['context_density'] for x in u]):>16.2f}{np.mean([x['auc'] for x in u]):>11.3f}"
            f"{np.mean(rnd):>12.3f}{np.mean(gain):>+11.2f}"
        )
    lines.append("targets held (runs of each setup)")
    for label, runs in groups.items():
        held = [f"{k}: {sum(bool(r.get('targets', {}).get(k)) for r in runs)}/{len(runs)}" for k in names]
        lines.append(f"  {label}: " + "; ".join(held))
    return "\n".join(lines)


def plot_densities(runs: list[dict[str, Any]]) -> Any:
    """Object and context attention densities per scheme over several runs (bars: mean; dots:
    the individual runs; dashed line: chance = 1). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("plot_densities needs at least one run")
    names = [n for n in (*SCHEMES, "random") if all(n in r["schemes"] for r in runs)]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.38
    for j, (key, label, colour) in enumerate(
        (("object_density", "on the object", "tab:green"), ("context_density", "on the context", "tab:brown"))
    ):
        xs = np.arange(len(names)) + (j - 0.5) * width
        vals = np.array([[r["schemes"][n][key] for n in names] for r in runs])
        ax.bar(xs, vals.mean(0), width, label=label, color=colour, alpha=0.8)
        for row in vals:
            ax.plot(xs, row, "k.", ms=5)
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_xticks(np.arange(len(names)), [n.replace("_", "-") for n in names])
    ax.set_ylabel("attention density (1 = chance)")
    ax.set_title(f"where attention goes ({len(runs)} seed(s); dots: single seeds)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


__all__ = [
    "PigeonConfig",
    "SCALES",
    "SCHEMES",
    "attention_summary",
    "compare",
    "format_results",
    "load_results",
    "load_runs",
    "plot_densities",
    "random_attention",
    "region_density",
    "region_mass",
    "run_pigeon",
    "summarize",
]
