"""A model on the field's benchmarks: localization, the extended (open-set) protocol and the
negative-audio assessment, beside the baselines, in one run.

Senocak et al. (CVPR 2018) score a map against boxes of visible sources (cIoU@0.5, AUC). Later
work asks more of a model, and a researcher who evaluates with soundloc gets all of it from
:func:`run_benchmark` (``soundloc benchmark`` on the command line):

- **localization** on the set's annotated pairs under its protocol (Flickr-SoundNet: LVS;
  VGG-SS: :meth:`~soundloc.metrics.Protocol.vggss`), with the whole-image, centre-prior and
  random baselines (:func:`soundloc.metrics.evaluate`);
- **extended** (SLAVC, NeurIPS 2022): the sounding pairs plus non-sounding ones, ranked by a
  named confidence (:data:`~soundloc.experiments.beyond.CONFIDENCES`): AP, max-F1, precision
  and precision by object size (:mod:`soundloc.metrics.openset`), beside the same baselines;
- **negative** audio (Juanola et al., ICASSP 2025): the same frames with silence, noise,
  another class's sound, an off-screen sound and a same-class control: how far the map moves
  and whether the confidence drops (:func:`~soundloc.experiments.beyond.negative_audio_test`),
  beside maps that do not listen.

A :class:`BenchmarkSet` says what to run on. :func:`synthetic_set` builds one from the synthetic
world without any download: its annotated held-out scenes are the test pairs, its off-screen and
ambient scenes natural non-sounding pairs (no object in view makes their sound), and each
scene with a visible source is also paired with the clip of a class that is nowhere in its frame.
:func:`folder_set` reads a prepared folder (Flickr-SoundNet's annotated set, or VGG-SS from
``soundloc data vggss``); its non-sounding pairs are drawn (:func:`draw_non_sounding`, written
out by the command) or read from a published list (:func:`read_pairs_csv`, SLAVC's format).
:func:`benchmark_markdown` renders the result as tables.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from soundloc.data.dataset import AVDataset
from soundloc.data.layout import read_annotations
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld
from soundloc.experiments import beyond
from soundloc.experiments.run import annotations_of
from soundloc.metrics import evaluate, gt_maps
from soundloc.metrics.openset import (
    SIZE_BINS,
    get_open_set_protocol,
    ground_truth_areas,
    open_set_baselines,
    open_set_scores,
)
from soundloc.metrics.protocol import SET_PROTOCOLS, Protocol, get_protocol
from soundloc.metrics.report import protocol_name
from soundloc.models import SoundLocalizer
from soundloc.utils.files import atomic_open, json_safe

#: The parts of a benchmark run, in the order of the tables.
PARTS: tuple[str, ...] = ("localization", "extended", "negative")
#: The kind written in the third column of a non-sounding pair's row (SLAVC's lists).
NON_SOUNDING = "non-sounding"


@dataclass(frozen=True)
class NonSounding:
    """One non-sounding pair: the frame of pair ``image`` with the sound of pair ``sound``
    (the same id for a natural one, such as an off-screen scene), and where it comes from."""

    image: str
    sound: str
    origin: str


@dataclass
class BenchmarkSet:
    """What a benchmark runs on.

    Attributes:
        name: ``"flickr"``, ``"vggss"``, ``"synthetic"`` (or any label).
        items: dataset of the annotated test pairs (localization and negative audio).
        protocol: the cIoU protocol of the set.
        pool: dataset holding every pair a non-sounding pair takes its frame or sound from
            (looked up by id; may be ``items``).
        sounding: ids of ``items`` that count as sounding in the extended protocol.
        non_sounding: the non-sounding pairs.
        labels: ``{id: class index}`` of the pairs, or ``None`` (no classes).
        visible: ``{id: classes in view}`` of the pairs, or ``None`` (unknown).
        rule: how the drawn non-sounding pairs (and the off-screen sounds) were chosen.
        description: one line about the set.
    """

    name: str
    items: Any
    protocol: Protocol
    pool: Any
    sounding: list[str]
    non_sounding: list[NonSounding]
    labels: dict[str, int] | None = None
    visible: dict[str, frozenset[int]] | None = None
    rule: str = ""
    description: str = ""

    @property
    def ids(self) -> list[str]:
        return list(self.items.ids)

    def origins(self) -> dict[str, int]:
        """``{origin: non-sounding pairs}``."""
        out: dict[str, int] = {}
        for p in self.non_sounding:
            out[p.origin] = out.get(p.origin, 0) + 1
        return out


def draw_non_sounding(ids: Sequence[str], labels: dict[str, int] | None = None,
                      visible: dict[str, frozenset[int]] | None = None, seed: int = 0,
                      candidates: Sequence[str] | None = None) -> tuple[list[NonSounding], str]:
    """One non-sounding pair per id: its frame with the clip of a partner whose source is not in
    view (:func:`~soundloc.experiments.beyond.offscreen_partners`; partners among
    ``candidates``, default ``ids``), drawn from ``seed``. An id with no qualifying partner gets
    none (the number drawn says it). Returns the pairs and the rule used."""
    ids = list(ids)
    pool = list(ids) if candidates is None else list(candidates)
    everyone = ids + [c for c in pool if c not in set(ids)]
    pos = {i: k for k, i in enumerate(everyone)}
    lab = None if labels is None else [labels[i] for i in everyone]
    vis = None if visible is None else [visible[i] for i in everyone]
    src, rule = beyond.offscreen_partners(len(everyone), lab, vis, torch.Generator().manual_seed(int(seed)),
                                          candidates=[pos[c] for c in pool])
    out = [NonSounding(i, everyone[int(src[k])], "drawn") for k, i in enumerate(ids) if int(src[k]) >= 0]
    return out, rule


def write_pairs_csv(path: str | os.PathLike[str], pairs: Sequence[NonSounding]) -> Path:
    """Write non-sounding pairs as SLAVC's lists are: ``image,audio,non-sounding`` per row (with
    a header row ``image,audio,kind``, which SLAVC's reader skips), atomically."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "audio", "kind"])
        for p in pairs:
            w.writerow([p.image, p.sound, NON_SOUNDING])
    return Path(path)


def _stem(text: str) -> str:
    name = text.strip()
    for ext in (".jpg", ".jpeg", ".png", ".wav", ".mp4", ".flac"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def read_pairs_csv(path: str | os.PathLike[str], origin: str = "published") -> list[NonSounding]:
    """Non-sounding pairs from a list in SLAVC's format (``<image id>,<audio id>,<kind>`` per row;
    rows whose kind is not ``non-sounding``, such as a header or the sounding pairs, are
    skipped; file extensions on the ids are dropped).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a row with fewer than three columns or an empty id (the message names the
            file and line), or no non-sounding row at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list of non-sounding pairs not found")
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise ValueError(f"{path}, line {line}: expected '<image id>,<audio id>,<kind>', got {row!r}")
            if row[2].strip() != NON_SOUNDING:
                continue
            image, sound = _stem(row[0]), _stem(row[1])
            if not image or not sound:
                raise ValueError(f"{path}, line {line}: empty id in {row!r}")
            out.append(NonSounding(image, sound, origin))
    if not out:
        raise ValueError(f"{path}: no row of kind '{NON_SOUNDING}'")
    return out


# -- the sets ------------------------------------------------------------------------------------
def synthetic_set(world: SyntheticWorld, indices: Sequence[int], protocol: Protocol | str | None = None,
                  seed: int = 0) -> BenchmarkSet:
    """The synthetic world's scenes ``indices`` (held out from training) as a benchmark set.

    Test pairs: the annotated scenes (a visible object, or an ambient sound whose band the
    annotators box), as in the pigeon experiment. Sounding in the extended protocol: the scenes
    whose sounding object is in view. Non-sounding: the off-screen and ambient scenes themselves
    (no object in view makes their sound), and each visible-object scene's frame with the clip of
    another visible-object scene whose class is nowhere in the frame, neither sounding nor
    silent (:func:`draw_non_sounding`, ``seed``).
    """
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("no scene indices")
    pool = SyntheticDataset(world, indices, grid=None, labelled=False)
    scenes = [pool.scene(k) for k in range(len(pool))]
    annotated = [sc.index for sc in scenes if sc.annotation is not None]
    if not annotated:
        raise ValueError("none of the scenes is annotated")
    items = pool.subset(annotated)
    labels = {sc.id: sc.label for sc in scenes}
    visible = {sc.id: frozenset({sc.label, *sc.distractor_labels}) for sc in scenes}
    sounding = [sc.id for sc in scenes if sc.kind == "object"]
    natural = [NonSounding(sc.id, sc.id, f"{sc.kind} scene") for sc in scenes if sc.kind in ("offscreen", "ambient")]
    drawn, rule = draw_non_sounding(sounding, labels, visible, seed)
    cfg = world.config
    return BenchmarkSet(
        name="synthetic", items=items, protocol=get_protocol(protocol), pool=pool, sounding=sounding,
        non_sounding=natural + drawn, labels=labels, visible=visible, rule=rule,
        description=(f"synthetic world seed {world.seed} ({cfg.num_classes} classes, {cfg.image_size}x{cfg.image_size}, "
                     f"{cfg.clip_seconds:g} s clips), scenes {indices[0]}..{indices[-1]}"),
    )


def folder_set(name: str, root: str | os.PathLike[str], ids: str | os.PathLike[str] | Sequence[str],
               image_size: int, clip_seconds: float, sample_rate: int, protocol: Protocol | str | None = None,
               pairs: str | os.PathLike[str] | Sequence[NonSounding] | None = None, seed: int = 0) -> BenchmarkSet:
    """A prepared folder's test pairs (``ids``: a split name such as ``test`` or
    ``vggss_present``, an id-list file, or ids) as a benchmark set; images and clips sized for
    the model (``image_size``, ``clip_seconds``, ``sample_rate``).

    Every test pair needs an annotation. Classes come from the annotations' ``category`` (VGG-SS);
    without them (Flickr-SoundNet) none are known. Non-sounding pairs: ``pairs`` (a list file in
    SLAVC's format, or pairs), whose ids must be prepared in ``root``; else one drawn per test
    pair (:func:`draw_non_sounding`, ``seed``).

    Raises:
        FileNotFoundError: the folder, its index or a list is missing.
        ValueError: a test pair without annotation, or a pair's id not in the index (named).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    common: dict[str, Any] = dict(image_size=image_size, clip_seconds=clip_seconds, sample_rate=sample_rate,
                                  labelled=False)
    try:
        items = AVDataset(root, ids, **common)
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None
    if len(items) == 0:
        raise ValueError(f"{root}: no test pairs in {ids!r}")
    missing = [i for i in items.ids if i not in items.annotations]
    if missing:
        raise ValueError(f"{root}: {len(missing)} test pair(s) without annotation, e.g. {missing[:3]}")
    anns = read_annotations(root / "annotations.json")
    categories = sorted({a.category for a in anns.values() if a.category})
    labels = None
    if categories and all(anns[i].category for i in items.ids):
        index = {c: k for k, c in enumerate(categories)}
        labels = {i: index[a.category] for i, a in anns.items() if a.category}
    if pairs is None:
        non_sounding, rule = draw_non_sounding(items.ids, labels, None, seed)
    else:
        non_sounding = list(pairs) if not isinstance(pairs, (str, os.PathLike)) else read_pairs_csv(pairs)
        rule = f"the published list {Path(pairs).name}" if isinstance(pairs, (str, os.PathLike)) else "given"
    needed = list(dict.fromkeys(items.ids + [i for p in non_sounding for i in (p.image, p.sound)]))
    try:
        pool = AVDataset(root, needed, **common)
    except KeyError as exc:
        raise ValueError(f"non-sounding pairs: {str(exc).strip(chr(34) + chr(39))}") from None
    return BenchmarkSet(name=name, items=items, protocol=get_protocol(protocol or SET_PROTOCOLS.get(name, "lvs")),
                        pool=pool, sounding=list(items.ids), non_sounding=non_sounding, labels=labels,
                        rule=rule, description=f"{root} ({len(items)} test pairs from {ids if isinstance(ids, str) else 'a list'})")


# -- the run -------------------------------------------------------------------------------------
@dataclass
class BenchmarkSettings:
    """The choices of a run (recorded in its result)."""

    parts: tuple[str, ...] = PARTS
    confidence: str = "peak"
    kinds: tuple[str, ...] | None = None
    open_protocol: str = "slavc"
    seed: int = 0
    random_repeats: int = 10
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        bad = [p for p in self.parts if p not in PARTS]
        if bad or not self.parts:
            raise ValueError(f"parts must be some of {PARTS}, got {list(self.parts)}")
        if self.confidence not in beyond.CONFIDENCES:
            raise ValueError(f"confidence must be one of {beyond.CONFIDENCES}, got {self.confidence!r}")
        if self.kinds is not None:
            self.kinds = tuple(self.kinds)
            bad = [k for k in self.kinds if k not in beyond.NEGATIVE_KINDS]
            if bad or not self.kinds:
                raise ValueError(f"kinds must be some of {beyond.NEGATIVE_KINDS}, got {list(self.kinds)}")
        get_open_set_protocol(self.open_protocol)
        for name in ("seed", "random_repeats", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be an int >= {0 if name == 'seed' else 1}, got {v!r}")


def _positions(dataset: Any) -> dict[str, int]:
    return {i: k for k, i in enumerate(dataset.ids)}


def _localization(result: Any) -> dict[str, Any]:
    return {"n": result.n, "model": {"success": result.success, "auc": result.auc},
            "baselines": {k: v.to_dict() for k, v in result.baselines.items()}}


def run_benchmark(model: SoundLocalizer, bset: BenchmarkSet, settings: BenchmarkSettings | None = None,
                  device: str | torch.device | None = None, progress: bool = False) -> dict[str, Any]:
    """Run ``model`` on ``bset`` (the parts of ``settings``); a JSON-able dict of the results
    (see the module docstring), baselines beside the model in every part."""
    st = settings or BenchmarkSettings()
    grid = model.grid_size(model.config.image_size, model.config.image_size)
    items = bset.items
    out: dict[str, Any] = {
        "name": bset.name, "description": bset.description, "n_items": len(items),
        "protocol": {"name": protocol_name(bset.protocol), "description": bset.protocol.describe()},
        "grid": list(grid),
    }
    need_own = "localization" in st.parts or "extended" in st.parts
    if need_own:
        maps, conf = beyond.localize_positions(model, items, items, [(k, k) for k in range(len(items))],
                                               st.batch_size, device)
        anns = annotations_of(items)
        ev = evaluate(maps, anns, bset.protocol, seed=st.seed, random_repeats=st.random_repeats, random_grid=grid,
                      per_annotator=False, ids=list(items.ids), name="model")
        if "localization" in st.parts:
            out["localization"] = _localization(ev)
    if "extended" in st.parts:
        out["extended"] = _extended(model, bset, st, maps, conf, anns, ev.ciou, grid, device)
    if "negative" in st.parts:
        out["negative"] = _negative(model, bset, st, grid, device, progress)
    return json_safe(out)


def _extended(model: SoundLocalizer, bset: BenchmarkSet, st: BenchmarkSettings, maps: torch.Tensor,
              conf: dict[str, torch.Tensor], anns: list[Any], cious: torch.Tensor, grid: tuple[int, int],
              device: str | torch.device | None) -> dict[str, Any]:
    op = get_open_set_protocol(st.open_protocol)
    pos = _positions(bset.items)
    snd = [pos[i] for i in bset.sounding]
    if not snd:
        raise ValueError(f"{bset.name}: no sounding pair for the extended protocol")
    if not bset.non_sounding:
        raise ValueError(f"{bset.name}: no non-sounding pair for the extended protocol")
    pool = _positions(bset.pool)
    pairs = [(pool[p.image], pool[p.sound]) for p in bset.non_sounding]
    _, neg_conf = beyond.localize_positions(model, bset.pool, bset.pool, pairs, st.batch_size, device)
    gt = gt_maps([anns[k] for k in snd], bset.protocol)
    areas = ground_truth_areas(gt)
    snd_idx = torch.tensor(snd)
    scores = {name: open_set_scores(c[snd_idx], cious[snd_idx], areas, neg_conf[name], op, name="model",
                                    confidence=name).to_dict() for name, c in conf.items()}
    by_origin = {}
    origins = [p.origin for p in bset.non_sounding]
    for origin in dict.fromkeys(origins):
        keep = torch.tensor([o == origin for o in origins])
        s = open_set_scores(conf[st.confidence][snd_idx], cious[snd_idx], areas, neg_conf[st.confidence][keep], op,
                            name="model", confidence=st.confidence)
        by_origin[origin] = {"n": int(keep.sum()), "ap": s.ap, "ap_blind": s.ap_blind, "max_f1": s.max_f1}
    base = open_set_baselines(gt, len(pairs), bset.protocol, op, seed=st.seed, repeats=st.random_repeats,
                              grid=grid, confidence=beyond.MAP_STAND_IN[st.confidence])
    localized = op.localized(cious[snd_idx].numpy()).tolist() + [False] * len(pairs)
    return {
        "open_protocol": {"name": st.open_protocol, "description": op.describe()},
        "confidence": st.confidence, "rule": bset.rule, "n_sounding": len(snd), "n_non_sounding": len(pairs),
        "origins": bset.origins(), "model": scores[st.confidence], "confidences": scores, "by_origin": by_origin,
        "baselines": {k: v.to_dict() for k, v in base.items()}, "size_bins": {k: list(v) for k, v in SIZE_BINS.items()},
        # every pair, the sounding ones first (in the set's order), then the non-sounding ones
        "pairs": {"sounding": [True] * len(snd) + [False] * len(pairs), "localized": localized,
                  "confidence": {name: c[snd_idx].tolist() + neg_conf[name].tolist() for name, c in conf.items()}},
    }


def available_kinds(bset: BenchmarkSet, kinds: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The negative-audio kinds that can run on ``bset`` (``kinds`` or all) and why the others cannot."""
    wanted = list(kinds) if kinds is not None else list(beyond.NEGATIVE_KINDS)
    skipped = {k: "needs class labels (this set has none)" for k in wanted
               if k in ("other_class", "same_class") and bset.labels is None}
    return [k for k in wanted if k not in skipped], skipped


def _negative(model: SoundLocalizer, bset: BenchmarkSet, st: BenchmarkSettings, grid: tuple[int, int],
              device: str | torch.device | None, progress: bool) -> dict[str, Any]:
    kinds, skipped = available_kinds(bset, st.kinds)
    if not kinds:
        raise ValueError(f"{bset.name}: none of the negative-audio kinds {list(st.kinds or [])} can run: {skipped}")
    ids = list(bset.items.ids)
    labels = None if bset.labels is None else [bset.labels[i] for i in ids]
    visible = None if bset.visible is None else [bset.visible[i] for i in ids]
    res = beyond.negative_audio_test(model, bset.items, kinds, seed=st.seed, batch_size=st.batch_size, device=device,
                                     protocol=bset.protocol, labels=labels, visible=visible, progress=progress)
    rule = beyond.partner_rule(labels is not None, visible is not None)
    return {
        "kinds": kinds, "skipped": skipped, "confidence": st.confidence, "offscreen_rule": rule,
        "own": {"n": res.n_scored, "success": res.scores.get("own sound", (None, None))[0],
                "auc": res.scores.get("own sound", (None, None))[1],
                "tv_uniform": float(res.tv_uniform.double().mean())},
        "model": res.rows(st.confidence),
        "confidences": {name: res.rows(name) for name in beyond.CONFIDENCES},
        "baselines": beyond.negative_audio_baselines(len(ids), grid, kinds, st.seed, st.confidence),
    }


# -- the three schemes of the paper on the synthetic world ----------------------------------------
#: Config fields of the pigeon experiment that do not change its numbers.
_NOT_RESULTS = ("device", "threads", "workers", "pretrain_cache")


def same_experiment(a: Any, b: Any) -> bool:
    """Whether two pigeon configs (objects or dicts) describe the same experiment: equal up to
    device, threads, workers and the pretraining cache's folder. The same numbers are promised
    only on the same device with the same threads: another thread count sums floats in another
    order, and a long unsupervised training can carry that far (``benchmarks/pigeon/RUN_LOG.md``)."""
    from soundloc.experiments.pigeon import PigeonConfig

    da = (a if isinstance(a, PigeonConfig) else PigeonConfig.from_dict(a)).to_dict()
    db = (b if isinstance(b, PigeonConfig) else PigeonConfig.from_dict(b)).to_dict()
    return {k: v for k, v in da.items() if k not in _NOT_RESULTS} == {k: v for k, v in db.items() if k not in _NOT_RESULTS}


def scheme_models(config: Any, seed: int, models: str | os.PathLike[str] | None, train_out: str | os.PathLike[str],
                  progress: bool = True) -> tuple[dict[str, SoundLocalizer], dict[str, Any]]:
    """The unsupervised, supervised and semi-supervised models of the pigeon experiment
    ``config`` (a :class:`~soundloc.experiments.pigeon.PigeonConfig`) and ``seed``: read from the
    run folder ``models`` (``results.json`` and ``models/<scheme>.pt``, as ``soundloc pigeon``
    writes it) when that run is the same experiment (:func:`same_experiment`, same seed), else
    trained by :func:`~soundloc.experiments.pigeon.run_pigeon` into ``train_out``. Returns the
    models and a record of where they came from."""
    from soundloc.constants import SCHEMES
    from soundloc.experiments.pigeon import run_pigeon
    from soundloc.models import load_model
    from soundloc.utils.files import read_json

    folder = Path(models) if models is not None else None
    record: dict[str, Any] = {"seed": seed}
    reuse = False
    if folder is not None and (folder / "results.json").is_file():
        previous = read_json(folder / "results.json", "the run's results")
        reuse = (previous.get("seed") == seed and same_experiment(previous.get("config", {}), config)
                 and all((folder / "models" / f"{s}.pt").is_file() for s in SCHEMES))
        record["previous_command"] = previous.get("command")
    if not reuse:
        folder = Path(train_out)
        run_pigeon(config, folder, seed=seed, progress=progress,
                   command=f"soundloc.experiments.pigeon.run_pigeon(<{config.scale} preset>, seed={seed})")
        record["previous_command"] = None
    record.update(folder=str(folder), trained_now=not reuse)
    return {s: load_model(folder / "models" / f"{s}.pt").eval() for s in SCHEMES}, record


def benchmark_schemes(models: dict[str, SoundLocalizer], bset: BenchmarkSet, settings: BenchmarkSettings | None = None,
                      device: str | torch.device | None = None, progress: bool = False) -> dict[str, dict[str, Any]]:
    """:func:`run_benchmark` of each model on the same set: ``{name: result}``."""
    return {name: run_benchmark(m, bset, settings, device=device, progress=progress) for name, m in models.items()}


def comparison_rows(results: dict[str, dict[str, Any]], part: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows comparing several models' results on one set (``{name: result}`` of
    :func:`benchmark_schemes`) in ``part`` (``"localization"`` or ``"extended"``), with the
    baselines of the first result below them (the baselines depend on the set, not the model)."""
    names = list(results)
    if part == "localization":
        header = ["", "cIoU@0.5", "AUC"]
        rows = [[name] + localization_rows(results[name][part])[0][1:] for name in names]
        rows += localization_rows(results[names[0]][part])[1:]
    elif part == "extended":
        header = ["", *EXTENDED_COLUMNS]
        rows = [[name] + extended_rows(results[name][part])[0][1:] for name in names]
        rows += extended_rows(results[names[0]][part])[1:]
    else:
        raise ValueError(f"part must be 'localization' or 'extended', got {part!r}")
    return header, rows


def negative_comparison_rows(results: dict[str, dict[str, Any]], key: str = "tv_mean",
                             confidence: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one reading of the negative-audio part (``key``: ``tv_mean``,
    ``same_peak``, ``confidence_change``, ``confidence_lower``, ``success_change``) per
    replacement sound (rows) and model (columns), the random maps' reading last (``confidence``:
    whose confidence; default each result's own)."""
    names = list(results)
    first = results[names[0]]["negative"]
    sounds = [r["sound"] for r in first["model"]]
    def rows_of(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
        part = res["negative"]
        rows = part["confidences"][confidence] if confidence else part["model"]
        return {r["sound"]: r for r in rows}
    table = {name: rows_of(results[name]) for name in names}
    rnd = {r["sound"]: r for r in first["baselines"]["random"]}
    signed = key in ("confidence_change", "success_change")
    out = [[sound] + [_f(table[n][sound].get(key), signed=signed) for n in names] + [_f(rnd[sound].get(key), signed=signed)]
           for sound in sounds]
    return ["sound", *names, "random maps"], out


# -- the tables ----------------------------------------------------------------------------------
def _f(v: Any, digits: int = 3, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _pm(mean: Any, std: Any, repeats: int) -> str:
    return _f(mean) if repeats <= 1 or mean is None else f"{mean:.3f} ± {std:.3f}"


def localization_rows(part: dict[str, Any]) -> list[list[str]]:
    """``[row, cIoU@0.5, AUC]`` for the model and each baseline."""
    rows = [["model", _f(part["model"]["success"]), _f(part["model"]["auc"])]]
    for name, b in part["baselines"].items():
        rows.append([name, _pm(b["success"], b["success_std"], b["repeats"]), _pm(b["auc"], b["auc_std"], b["repeats"])])
    return rows


#: Columns of :func:`extended_rows`.
EXTENDED_COLUMNS = ("AP", "AP if blind", "max-F1", "precision", *SIZE_BINS)


def extended_rows(part: dict[str, Any]) -> list[list[str]]:
    """``[row, AP, AP if blind, max-F1, precision, small, medium, large, huge]`` for the model and
    baselines (sizes: precision and, in brackets, the number of sounding pairs in the bin)."""
    def row(name: str, s: dict[str, Any]) -> list[str]:
        sizes = [_f(s["by_size"][b]["precision"]) + f" ({s['by_size'][b]['n']})" for b in SIZE_BINS]
        return [name, _pm(s["ap"], s["ap_std"], s["repeats"]), _f(s["ap_blind"]),
                _pm(s["max_f1"], s["max_f1_std"], s["repeats"]), _pm(s["precision"], s["precision_std"], s["repeats"]),
                *sizes]
    return [row(f"model ({part['confidence']})", part["model"])] + [row(k, v) for k, v in part["baselines"].items()]


def negative_rows(part: dict[str, Any]) -> list[list[str]]:
    """One row per replacement sound: pairs, the model's mean TV, peak kept, confidence change and
    share lowered, cIoU@0.5 change, and the random maps' mean TV and share lowered."""
    rnd = {r["sound"]: r for r in part["baselines"]["random"]}
    out = []
    for r in part["model"]:
        b = rnd.get(r["sound"], {})
        out.append([r["sound"], str(r["n"]), _f(r.get("tv_mean")), _f(r.get("same_peak")),
                    _f(r.get("confidence_change"), signed=True), _f(r.get("confidence_lower")),
                    _f(r.get("success_change"), signed=True), _f(b.get("tv_mean")), _f(b.get("confidence_lower"))])
    return out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def set_markdown(result: dict[str, Any]) -> str:
    """The tables of one set's result (:func:`run_benchmark`)."""
    lines = [f"## {result['name']}: {result['description']}", "",
             f"Protocol: {result['protocol']['name']} ({result['protocol']['description']}); model grid "
             f"{result['grid'][0]}x{result['grid'][1]}.", ""]
    if "localization" in result:
        part = result["localization"]
        lines += [f"Localization ({part['n']} annotated pairs):", "",
                  markdown_table(["", "cIoU@0.5", "AUC"], localization_rows(part)), ""]
    if "extended" in result:
        part = result["extended"]
        origins = ", ".join(f"{n} {o}" for o, n in part["origins"].items())
        bins = ", ".join(f"{k} [{lo:g}, {'∞' if hi is None else format(hi, 'g')})"
                         for k, (lo, hi) in part["size_bins"].items())
        lines += [f"Extended, open-set ({part['n_sounding']} sounding pairs, {part['n_non_sounding']} non-sounding: "
                  f"{origins}; drawn: {part['rule']}; {part['open_protocol']['description']}; confidence "
                  f"'{part['confidence']}'; AP if blind: the AP of the same localizations ranked by one confidence "
                  f"for every pair; precision by ground-truth size in px² of the 224 frame: {bins}; "
                  "(n) = pairs in the bin):", "",
                  markdown_table(["", *EXTENDED_COLUMNS], extended_rows(part)), ""]
        others = ", ".join(f"{k} {v['ap']:.3f}" for k, v in part["confidences"].items())
        lines += [f"AP with each confidence: {others}.", ""]
    if "negative" in result:
        part = result["negative"]
        own = part["own"]
        skipped = "; ".join(f"{k}: {v}" for k, v in part["skipped"].items())
        lines += [f"Negative audio ({own['n']} annotated pairs; own sound cIoU@0.5 {_f(own['success'])}, AUC "
                  f"{_f(own['auc'])}; off-screen sound: {part['offscreen_rule']}; confidence '{part['confidence']}'; "
                  f"TV of the own maps from a uniform map {_f(own['tv_uniform'])}"
                  + (f"; not run: {skipped}" if skipped else "") + "). The whole image and the centre prior do not "
                  "listen: their maps and confidences never change (TV 0). Random maps drawn afresh for every sound:",
                  "",
                  markdown_table(["sound", "pairs", "TV", "peak kept", "conf. change", "conf. lower", "cIoU@0.5 change",
                                  "random TV", "random conf. lower"], negative_rows(part)), ""]
    return "\n".join(lines)


def benchmark_markdown(doc: dict[str, Any]) -> str:
    """The whole run (``{"model": ..., "sets": {...}}``) as a Markdown document."""
    m = doc.get("model", {})
    head = [f"# Benchmark of {m.get('name', 'a model')}", ""]
    if m.get("checkpoint"):
        head.append(f"- checkpoint: `{m['checkpoint']}`")
    for key in ("command", "date", "device", "version", "git_commit"):
        if doc.get(key):
            head.append(f"- {key.replace('_', ' ')}: {doc[key]}")
    head.append("")
    return "\n".join(head + [set_markdown(s) for s in doc["sets"].values()])


__all__ = ["BenchmarkSet", "BenchmarkSettings", "NON_SOUNDING", "NonSounding", "PARTS", "available_kinds",
           "EXTENDED_COLUMNS", "benchmark_markdown", "benchmark_schemes", "comparison_rows", "draw_non_sounding", "extended_rows",
           "folder_set", "localization_rows", "markdown_table", "negative_comparison_rows", "negative_rows",
           "read_pairs_csv", "run_benchmark", "same_experiment", "scheme_models", "set_markdown", "synthetic_set",
           "write_pairs_csv"]
