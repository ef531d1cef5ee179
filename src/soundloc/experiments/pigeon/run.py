"""The pigeon superstition, run on the synthetic world in small steps.

Senocak et al. (CVPR 2018, Sec. 4-5) observe that the unsupervised model (triplet loss L_U)
sometimes attends to what *co-occurs* with a sound rather than to its source (the rails, not
the train), and that a little supervision (L_S) corrects it. :func:`run_pigeon` trains the
three schemes of the paper's Table 1 from the same initial weights, with the same seed and
number of epochs, scores them on held-out annotated scenes with :mod:`soundloc.metrics` (cIoU@0.5
and AUC beside the random, whole-image and centre-prior baselines) and measures where the
attention goes (:mod:`soundloc.metrics.regions`). Its steps:

1. :func:`build_world` - the world, its splits and the test scenes' regions;
2. :func:`visual_stream` - the visual stream pretrained as an image classifier on a world of
   another seed (the paper's frozen ImageNet VGG16), or ``None`` (from scratch);
3. :func:`train_scheme` - one scheme from the shared initial weights;
4. :func:`score_scheme` - its maps, scores and attention densities;
5. :func:`write_artifacts` - ``results.json``, the models and the figures.

Attention masses are measured on the test scenes whose sounding object is visible (kind
``"object"``): the object region is the source's true box, the context region the ground band
outside it. Ambient test scenes are scored by cIoU/AUC like the others.

Budget: every scheme trains for the same number of epochs with the same optimizer over *its*
training pairs: the unsupervised and semi-supervised schemes over all ``n_train`` scenes, the
supervised one over the ``n_labelled`` annotated scenes only (the paper's supervised model sees
only annotated pairs), so it takes fewer steps.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from soundloc import viz
from soundloc.constants import SCHEMES, Scheme
from soundloc.data.synthetic import Scene, SyntheticDataset, SyntheticWorld, WorldSplits, world_splits
from soundloc.data.frozen_features import WithFeatures, compute_frozen_features, frozen_streams
from soundloc.experiments.pigeon.config import PigeonConfig
from soundloc.experiments.pigeon.report import RESULTS_FILE, load_results, summary_table, target_summary
from soundloc.experiments.pigeon.targets import TARGETS, beats_baselines, pigeon_targets
from soundloc.experiments.provenance import provenance
from soundloc.metrics import EvaluationResult, attention_summary, evaluate, random_attention
from soundloc.models import ModelConfig, SoundLocalizer, build_model
from soundloc.pretrain import pretrained_sound_state, pretrained_visual_state
from soundloc.train import History, Trainer, predict_attention, save_trained
from soundloc.utils.device import default_device
from soundloc.utils.files import atomic_path, json_safe, write_json
from soundloc.utils.seeding import seed_everything

@dataclass
class PigeonData:
    """The world of one run and what the steps share: splits, datasets, test scenes and masks."""

    world: SyntheticWorld
    splits: WorldSplits
    grid: tuple[int, int]
    train_set: SyntheticDataset | WithFeatures  # every training scene; labelled ones carry ground truth
    unlabelled: SyntheticDataset | WithFeatures  # the same scenes without ground truth
    test_set: SyntheticDataset | WithFeatures
    test_scenes: list[Scene]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.test_scenes]

    @property
    def visible(self) -> torch.Tensor:
        """``[N]`` bool: test scenes whose sounding object is in view (attention masses)."""
        return torch.tensor([s.kind == "object" for s in self.test_scenes])

    def groups(self) -> dict[str, list[int]]:
        """Test-scene positions by group: ``context_bound`` (the sound's class is bound to its
        band) and ``free``; a group the world does not have (``bound_fraction`` 0 or 1) is left out."""
        bound = set(self.world.config.context_bound_classes)
        out = {"context_bound": [k for k, s in enumerate(self.test_scenes) if s.label in bound],
               "free": [k for k, s in enumerate(self.test_scenes) if s.label not in bound]}
        k = self.world.config.num_classes
        return {g: idx for g, idx in out.items() if (len(bound) if g == "context_bound" else k - len(bound))}

    def classes(self) -> dict[int, list[int]]:
        """Test-scene positions by the sound's class."""
        return {c: [k for k, s in enumerate(self.test_scenes) if s.label == c]
                for c in range(self.world.config.num_classes)}

    def masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, H, W]`` object and context masks of the test scenes."""
        return (torch.stack([s.object_mask for s in self.test_scenes]),
                torch.stack([s.context_mask for s in self.test_scenes]))


def build_world(config: PigeonConfig, seed: int, progress: bool = False) -> PigeonData:
    """Step 1: the world of ``seed``, its splits, and every scene rendered once (with
    ``config.workers`` processes)."""
    world = SyntheticWorld(config.world, seed=seed)
    grid = build_model(config.model).grid_size(config.world.image_size, config.world.image_size)
    splits = world_splits(world, config.n_train + config.n_test, config.n_test, config.n_labelled)
    base = SyntheticDataset(world, splits.train, grid=grid, annotator=config.annotator,
                            labelled=splits.labelled, seed=seed)
    base.subset(list(splits.train) + list(splits.test)).prefetch(config.workers, progress, "generating the world")
    test_set = base.subset(splits.test, labelled=False, grid=None)
    data = PigeonData(
        world=world, splits=splits, grid=tuple(grid), train_set=base,
        unlabelled=base.subset(splits.train, labelled=False), test_set=test_set,
        test_scenes=[test_set.scene(k) for k in range(len(test_set))],
    )
    for group, idx in data.groups().items():
        if not idx:
            raise ValueError(f"the test split (n_test = {config.n_test}, seed {seed}) has no scene of the "
                             f"{group} classes: raise n_test")
    return data


@dataclass
class Streams:
    """The pretrained streams every scheme of a run starts from: state dicts (``None``: the
    stream starts from the seeded initial weights) and the pretrainings' records."""

    visual: dict[str, torch.Tensor] | None = None
    sound: dict[str, torch.Tensor] | None = None
    records: dict[str, dict[str, Any] | None] = dataclasses.field(default_factory=dict)


def visual_stream(
    config: PigeonConfig, seed: int, device: str, progress: bool = False
) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """Step 2: the pretrained visual stream's state dict and its record, or ``(None, None)``
    when ``config.pretraining`` is ``None`` (the stream trains from scratch)."""
    if config.pretraining is None:
        return None, None
    pre = dataclasses.replace(config.pretraining, workers=config.workers)
    return pretrained_visual_state(config.model, config.world, pre, seed, device=device,
                                   cache_dir=config.pretrain_cache, progress=progress)


def sound_stream(
    config: PigeonConfig, seed: int, device: str, progress: bool = False
) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """Step 2': the pretrained sound stream's state dict and its record, or ``(None, None)``
    when ``config.sound_pretraining`` is ``None``."""
    if config.sound_pretraining is None:
        return None, None
    pre = dataclasses.replace(config.sound_pretraining, workers=config.workers)
    return pretrained_sound_state(config.model, config.world, pre, seed, device=device,
                                  cache_dir=config.pretrain_cache, progress=progress)


def pretrained_streams(config: PigeonConfig, seed: int, device: str, progress: bool = False) -> Streams:
    """Steps 2 and 2': both streams' pretrainings (either may be absent)."""
    visual, v_record = visual_stream(config, seed, device, progress)
    sound, s_record = sound_stream(config, seed, device, progress)
    return Streams(visual, sound, {"visual": v_record, "sound": s_record})


def _start_model(config: PigeonConfig, streams: Streams, seed: int) -> SoundLocalizer:
    """The initial weights every scheme starts from: ``build_model`` after
    ``seed_everything(seed)``, then the pretrained streams loaded into it."""
    seed_everything(seed)
    model = build_model(config.model)
    if streams.visual is not None:
        model.visual.load_state_dict(streams.visual)
    if streams.sound is not None:
        model.sound.load_state_dict(streams.sound)
    return model


def cache_features(config: PigeonConfig, data: PigeonData, streams: Streams, seed: int, device: str,
                   progress: bool = False) -> PigeonData:
    """Step 2b: with ``config.feature_cache``, ``data`` whose datasets carry the frozen streams'
    outputs (computed once per scene from the weights every scheme starts from); ``data``
    unchanged when no stream is frozen or the cache is off."""
    model = build_model(config.model)
    if not (config.feature_cache and frozen_streams(model)):
        return data
    model = _start_model(config, streams, seed).to(device)
    every = data.train_set.subset(list(data.splits.train) + list(data.splits.test), labelled=False, grid=None)
    feats = compute_frozen_features(model, every, batch_size=128, progress=progress)
    return dataclasses.replace(data, train_set=WithFeatures(data.train_set, feats),
                               unlabelled=WithFeatures(data.unlabelled, feats),
                               test_set=WithFeatures(data.test_set, feats))


def train_scheme(
    config: PigeonConfig, scheme: Scheme, data: PigeonData, streams: Streams,
    seed: int, device: str, progress: bool = False,
) -> Trainer:
    """Step 3: one scheme trained from the shared initial weights (:func:`_start_model`)."""
    model = _start_model(config, streams, seed)
    trainer = Trainer(model, dataclasses.replace(config.train_config(scheme, seed, progress), device=device))
    trainer.fit(data.unlabelled if scheme == "unsupervised" else data.train_set)
    return trainer


def score_maps(maps: torch.Tensor, data: PigeonData, subset: list[int] | None = None) -> dict[str, float]:
    """Attention mass and density on the object and the context, over the visible test scenes
    (of ``subset`` positions when given); NaN where the subset has no visible scene."""
    obj, ctx = data.masks()
    keep = data.visible.clone()
    if subset is not None:
        chosen = torch.zeros_like(keep)
        chosen[subset] = True
        keep &= chosen
    if not bool(keep.any()):
        nan = float("nan")
        return {"attention_on_object": nan, "attention_on_context": nan, "object_density": nan,
                "context_density": nan, "object_area": nan, "context_area": nan}
    return attention_summary(maps[keep], obj[keep], ctx[keep])


def breakdown(maps: torch.Tensor, data: PigeonData, config: PigeonConfig, seed: int, name: str,
              baselines: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores by group (context-bound and free classes) and by class: ``({"groups": ...,
    "per_class": ...}, baseline rows)``. Each row holds ``ciou_at_0.5``, ``auc``, ``n_scenes``,
    the attention densities and masses; with ``baselines``, the random, whole-image and
    centre-prior baselines are scored on the same subsets (random maps on the model's grid)."""
    anns = [s.annotation for s in data.test_scenes]
    parts: dict[str, dict[str, list[int]]] = {
        "groups": data.groups(), "per_class": {str(c): idx for c, idx in data.classes().items() if idx}}
    rows: dict[str, Any] = {"groups": {}, "per_class": {}}
    base: dict[str, Any] = {}
    for part, subsets in parts.items():
        for key, idx in subsets.items():
            ev = evaluate(maps[idx], [anns[i] for i in idx], ids=[data.ids[i] for i in idx], baselines=baselines,
                          seed=seed, random_repeats=config.random_repeats, random_grid=data.grid,
                          per_annotator=False, name=name)
            row: dict[str, Any] = {"ciou_at_0.5": float(ev.success), "auc": float(ev.auc), "n_scenes": len(idx)}
            row.update(score_maps(maps, data, idx))
            if part == "per_class":
                row["context_p"] = data.world.config.class_context_p(int(key))
            rows[part][key] = row
            for bname, b in ev.baselines.items():
                base.setdefault(bname, {"groups": {}, "per_class": {}})[part][key] = {
                    "ciou_at_0.5": b.success, "auc": b.auc, "n_scenes": len(idx),
                    **({"context_p": row["context_p"]} if part == "per_class" else {})}
    return rows, base


def score_scheme(
    model: SoundLocalizer, data: PigeonData, config: PigeonConfig, seed: int, name: str, baselines: bool = False
) -> tuple[dict[str, Any], torch.Tensor, EvaluationResult]:
    """Step 4: a trained model's test maps, its cIoU@0.5 and AUC (LVS protocol) and attention
    densities; with ``baselines`` the evaluation also scores the random, whole-image and
    centre-prior baselines (random maps on the model's grid)."""
    got_ids, maps = predict_attention(model, data.test_set, batch_size=64)
    if got_ids != data.ids:
        raise RuntimeError("predict_attention returned the test pairs in another order")
    evaluation = evaluate(maps, [s.annotation for s in data.test_scenes], ids=data.ids, baselines=baselines,
                          seed=seed, random_repeats=config.random_repeats, random_grid=data.grid,
                          per_annotator=True, name=name)
    row: dict[str, Any] = {"ciou_at_0.5": float(evaluation.success), "auc": float(evaluation.auc)}
    row.update(score_maps(maps, data))
    row["per_annotator_mean_success"] = float(evaluation.annotators.mean_success) if evaluation.annotators else None
    parts, _ = breakdown(maps, data, config, seed, name)
    row.update(parts)
    return row, maps, evaluation


def random_row(baseline: dict[str, Any], parts: dict[str, Any], data: PigeonData, seed: int) -> dict[str, Any]:
    """The random baseline as a scheme's row: its scores (overall and ``parts``: by group and
    class, from :func:`breakdown`) and the densities of its first maps."""
    maps = random_attention(len(data.test_scenes), data.grid, seed)
    row: dict[str, Any] = {"ciou_at_0.5": baseline["success"], "auc": baseline["auc"],
                           "ciou_at_0.5_std": baseline["success_std"], "auc_std": baseline["auc_std"]}
    row.update(score_maps(maps, data))
    subsets = {"groups": data.groups(), "per_class": {str(c): idx for c, idx in data.classes().items() if idx}}
    for part, rows in parts.items():
        row[part] = {key: {**scores, **score_maps(maps, data, subsets[part][key])} for key, scores in rows.items()}
    return row


def visual_stream_label(model: ModelConfig, pretraining: dict[str, Any] | None) -> str:
    """A short description of the visual stream, for tables."""
    if pretraining is None:
        return "from scratch" + (" (frozen: random features)" if model.freeze_visual else "")
    p = pretraining["world_config"]["context_p"]
    return f"pretrained (context_p {p:g}), {'frozen' if model.freeze_visual else 'fine-tuned'}"


def write_artifacts(out: Path, results: dict[str, Any], data: PigeonData, maps: dict[str, torch.Tensor],
                    histories: dict[str, History], n_examples: int) -> None:
    """Step 5: ``attention.png`` (test scenes × schemes), ``training_curves.png`` and, last
    and atomically, ``results.json``."""
    scenes = data.test_scenes
    # visible sources, alternately of a context-bound and of a free class
    visible = [k for k, s in enumerate(scenes) if s.kind == "object"]
    by_group = [[k for k in visible if data.world.config.is_context_bound(scenes[k].label) == b] for b in (True, False)]
    chosen = [k for pair in zip(*by_group) for k in pair][:n_examples] or visible[:n_examples] \
        or list(range(min(n_examples, len(scenes))))
    fig = viz.attention_grid(
        torch.stack([scenes[k].image for k in chosen]),
        {name.replace("_", "-"): m[chosen] for name, m in maps.items()},
        titles=[f"class {scenes[k].label} ({'bound' if data.world.config.is_context_bound(scenes[k].label) else 'free'}),"
                f" band {scenes[k].context_label}" for k in chosen],
        annotations=[scenes[k].annotation for k in chosen],
    )
    viz.save_figure(fig, out / "attention.png", close=True)
    viz.save_figure(viz.plot_history(histories, keys=("loss", "l_u", "l_s")), out / "training_curves.png", close=True)
    write_json(out / RESULTS_FILE, json_safe(results))


@dataclass
class TrainedSchemes:
    """What :func:`run_schemes` gives: the data as trained on (with cached features), each
    scheme's row of scores (``random`` included), the baselines' rows, the test maps, the
    histories, the first scheme's evaluation and the timings."""

    data: PigeonData
    schemes: dict[str, dict[str, Any]]
    baselines: dict[str, Any]
    maps: dict[str, torch.Tensor]
    histories: dict[str, History]
    evaluation: EvaluationResult
    timings: dict[str, float]


def run_schemes(config: PigeonConfig, data: PigeonData, streams: Streams, seed: int,
                device: str, models_dir: Path | None = None, progress: bool = False) -> TrainedSchemes:
    """Steps 2b-4 for the three schemes: the visual features cached (where the stream is
    frozen), each scheme trained from the shared initial weights (saved in ``models_dir`` when
    given) and scored with its groups and classes; the baselines scored on the same subsets."""
    log = (lambda msg: print(f"[pigeon seed {seed}] {msg}", file=sys.stderr)) if progress else (lambda msg: None)
    t0 = time.perf_counter()
    data = cache_features(config, data, streams, seed, device, progress)
    timings: dict[str, float] = {"frozen_features": time.perf_counter() - t0}
    schemes: dict[str, dict[str, Any]] = {}
    maps: dict[str, torch.Tensor] = {}
    histories: dict[str, History] = {}
    baselines: dict[str, Any] = {}
    evaluation: EvaluationResult | None = None
    for scheme in SCHEMES:
        t0 = time.perf_counter()
        trainer = train_scheme(config, scheme, data, streams, seed, device, progress)
        timings[f"train_{scheme}"] = time.perf_counter() - t0
        if models_dir is not None:
            save_trained(models_dir / f"{scheme}.pt", trainer, extra={"world_seed": seed, "scale": config.scale})
        row, maps[scheme], ev = score_scheme(trainer.model, data, config, seed, scheme, baselines=scheme == SCHEMES[0])
        if scheme == SCHEMES[0]:
            evaluation = ev
            baselines = {k: v.to_dict() for k, v in ev.baselines.items()}
            _, by_part = breakdown(maps[scheme], data, config, seed, scheme, baselines=True)
        row["train_seconds"] = timings[f"train_{scheme}"]
        row["final_loss"] = trainer.history[-1]["loss"] if trainer.history else None
        schemes[scheme], histories[scheme] = row, trainer.history
        log(f"{scheme}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float)))
    assert evaluation is not None
    schemes["random"] = random_row(baselines["random"], by_part.pop("random"), data, seed)
    for name, parts in by_part.items():  # the kept-pixel baselines, by group and class
        baselines[name].update(parts)
    return TrainedSchemes(data, schemes, baselines, maps, histories, evaluation, timings)


def run_pigeon(
    config: PigeonConfig | None = None,
    out_dir: str | os.PathLike[str] = "pigeon",
    seed: int = 0,
    command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the three schemes on the synthetic world and measure the superstition.

    Writes into ``out_dir``: ``results.json`` (atomically), ``models/<scheme>.pt`` (with the
    train config and history), ``models/visual_pretrained.pt``, and the figures
    ``attention.png`` and ``training_curves.png``.

    ``results.json`` holds ``schemes`` (for ``unsupervised``, ``supervised``,
    ``semi_supervised`` and the ``random`` baseline: ``ciou_at_0.5``, ``auc``,
    ``attention_on_object`` / ``attention_on_context`` (mean mass), ``object_density`` /
    ``context_density``), ``baselines`` (whole image, centre prior, random with its spread),
    ``targets``, ``config`` (:meth:`PigeonConfig.to_dict`), ``histories``, ``timings`` and the
    run's provenance (version, device, date, command). Same seed and config, same numbers on the
    same machine, whatever ``progress`` is; only timings and date differ.
    """
    config = PigeonConfig.at_scale("smoke") if config is None else config
    if not isinstance(config, PigeonConfig):
        raise TypeError(f"config must be a PigeonConfig, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out_dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = config.device or default_device()
    log = (lambda msg: print(f"[pigeon seed {seed}] {msg}", file=sys.stderr)) if progress else (lambda msg: None)
    t_start = time.perf_counter()

    data = build_world(config, seed, progress)
    timings: dict[str, float] = {"generate_world": time.perf_counter() - t_start}

    t0 = time.perf_counter()
    streams = pretrained_streams(config, seed, device, progress)
    timings["pretrain_streams"] = time.perf_counter() - t0
    for name in ("visual", "sound"):
        state, record = getattr(streams, name), streams.records[name]
        if state is not None and record is not None:
            with atomic_path(out / "models" / f"{name}_pretrained.pt") as tmp:
                torch.save({"state_dict": state, "pretraining": record}, tmp)
            log(f"{name} stream pretrained: held-out accuracy {record['test_accuracy']:.3f}")

    trained = run_schemes(config, data, streams, seed, device, out / "models", progress)
    timings.update(trained.timings)

    timings["total"] = time.perf_counter() - t_start
    results = _run_record(config, seed, trained, streams, timings)
    results.update(provenance(device, command or f"soundloc.experiments.pigeon.run_pigeon(<{config.scale} config>, seed={seed})"))
    write_artifacts(out, results, trained.data, trained.maps, trained.histories, config.n_figure_examples)
    return results


def _run_record(config: PigeonConfig, seed: int, trained: TrainedSchemes, streams: Streams,
                timings: dict[str, float]) -> dict[str, Any]:
    """``results.json``'s content but the provenance (see :func:`run_pigeon`)."""
    data, schemes = trained.data, trained.schemes
    targets = pigeon_targets(schemes)
    kinds = [s.kind for s in data.test_scenes]
    wc = config.world
    return {
        "experiment": "pigeon superstition (Senocak et al., CVPR 2018, Sec. 4-5) on the synthetic world",
        "schemes": schemes, "baselines": trained.baselines, "targets": targets, "target_definitions": TARGETS,
        "all_targets_met": bool(all(targets.values())), "beats_baselines": beats_baselines(schemes, trained.baselines),
        "groups": {"context_bound": list(wc.context_bound_classes),
                   "free": [k for k in range(wc.num_classes) if not wc.is_context_bound(k)]},
        "seed": seed, "scale": config.scale, "config": config.to_dict(), "temperature": config.model.temperature,
        "visual_stream": visual_stream_label(config.model, streams.records["visual"]),
        "visual_pretraining": streams.records["visual"], "sound_pretraining": streams.records["sound"],
        "grid": list(data.grid), "protocol": trained.evaluation.protocol.describe(),
        "test": {"n": len(kinds), "object": kinds.count("object"), "ambient": kinds.count("ambient"),
                 "masses_measured_on": "test scenes of kind 'object'"},
        "train": {"n": len(data.splits.train), "labelled": len(data.splits.labelled)},
        "histories": trained.histories, "timings": timings,
    }


#: Config fields that do not change a run's numbers (a finished seed with other values is reused).
_NOT_RESULTS = ("device", "threads", "workers", "pretrain_cache", "feature_cache")


def _same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k not in _NOT_RESULTS} == {k: v for k, v in b.items() if k not in _NOT_RESULTS}


def run_seeds(
    config: PigeonConfig,
    out_dir: str | os.PathLike[str],
    seeds: list[int],
    command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`run_pigeon` for each seed into ``out_dir/seed<N>``, then ``out_dir/summary.json``
    and ``out_dir/summary.md`` (:func:`~soundloc.experiments.pigeon.report.target_summary` and
    :func:`~soundloc.experiments.pigeon.report.summary_table`).

    A seed whose folder already holds the results of the same experiment (same config, up to
    device, threads, workers and cache) is read, not run again, so an interrupted series
    continues where it stopped. Pretrained visual streams are cached in
    ``out_dir/pretrain_cache`` unless ``config.pretrain_cache`` is set.

    Returns the summary with ``folders`` (seed -> folder) and ``table`` (the Markdown).
    """
    if not seeds:
        raise ValueError("seeds is empty")
    out = Path(out_dir)
    if config.pretrain_cache is None:
        config = dataclasses.replace(config, pretrain_cache=str(out / "pretrain_cache"))
    runs, folders = [], {}
    for seed in seeds:
        folder = out / f"seed{seed}"
        done = folder / RESULTS_FILE
        previous = load_results(folder) if done.is_file() else None
        if previous is not None and _same_experiment(previous.get("config", {}), config.to_dict()):
            runs.append(previous)
        else:
            runs.append(run_pigeon(config, folder, seed=seed, progress=progress,
                                   command=f"{command} [seed {seed}]" if command else None))
        folders[seed] = str(folder)
    summary = target_summary(runs)
    table = summary_table(runs)
    summary.update(folders={str(k): v for k, v in folders.items()}, command=command, config=config.to_dict(),
                   **{k: runs[-1].get(k) for k in ("version", "torch", "device", "device_name", "threads", "platform")},
                   date=provenance("cpu", "")["date"])
    write_json(out / "summary.json", json_safe(summary))
    head = [f"# Pigeon superstition: {len(runs)} seeds at scale {config.scale}", "",
            f"- command: `{command}`" if command else "- command: (Python API)",
            f"- date: {summary['date']}; device: {summary['device']} ({summary['device_name']}); "
            f"soundloc {summary['version']}, torch {summary['torch']}; threads {summary['threads']}",
            f"- visual stream: {runs[0].get('visual_stream')}; temperature {runs[0].get('temperature')}",
            f"- runs: " + ", ".join(f"seed {k}: `{v}`" for k, v in folders.items()), "", ""]
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text("\n".join(head) + table + "\n", encoding="utf-8")
    summary["folders"], summary["table"] = folders, table
    return summary


__all__ = [
    "PigeonData",
    "breakdown",
    "build_world",
    "random_row",
    "run_pigeon",
    "run_seeds",
    "score_maps",
    "score_scheme",
    "train_scheme",
    "visual_stream",
    "visual_stream_label",
    "write_artifacts",
]
