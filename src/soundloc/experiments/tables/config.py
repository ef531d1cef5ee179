"""The paper's Tables 1-3 as configs: their rows (:data:`TABLES`), the scale their counts become
(:class:`TableScale`) and one table's run (:class:`TableConfig`, :func:`table_config`).

Senocak et al. (CVPR 2018) report on the 250 annotated Flickr-SoundNet test pairs (cIoU@0.5 and
AUC, in %):

- Table 1: unsupervised (10k, 144k unlabelled pairs), supervised (2.5k labelled) and
  semi-supervised (2.5k labelled + 10k unlabelled) models, each with attention mechanism 1
  (softmax over cosines) and 2 (softmax over ReLU of the cosines); the paper does not report
  mechanism 2 at 10k unsupervised, nor semi-supervised with 144k unlabelled pairs;
- Table 2: semi-supervised with 10k unlabelled pairs and 0.5k...2.5k labels;
- Table 3: IoU@0.5 and AUC against each of the three annotators (the paper prints their means).

Sizes scale down with the :class:`TableScale` (``tiny`` for the test suite, ``smoke`` for a few
CPU minutes per row, ``full`` the paper's counts); a scale names only the training it changes
(the rest is the preset's :class:`~soundloc.train.TrainConfig`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from soundloc.config import ConfigMixin, check_choice, check_int, check_number, parse_seeds
from soundloc.constants import Preset, Scale, Scheme
from soundloc.experiments.run import DataConfig
from soundloc.train import TrainConfig

TableName = Literal["table1", "table2", "table3"]
Mechanism = Literal["cosine", "relu"]
MECHANISM_LABEL = {"cosine": "softmax (mechanism 1)", "relu": "ReLU + softmax (mechanism 2)"}
MECHANISM_SHORT = {"cosine": "mechanism 1", "relu": "mechanism 2"}
BASELINES = ("random", "whole image", "centre prior")
#: The paper's random baseline in Table 1 (its text prints the cIoU as "0.12 ± 0.2": 12.0 %).
PAPER_RANDOM = (12.0, 32.3)


@dataclass(frozen=True)
class Row:
    """One row: its label, scheme, the paper's counts of unlabelled ("10k"/"144k") and labelled
    pairs, and the paper's numbers per mechanism (``None``: not reported)."""

    key: str
    label: str
    scheme: Scheme
    unlabelled: str | None
    labelled: int
    paper: dict[str, tuple[float, float] | None]


TABLES: dict[str, tuple[Row, ...]] = {
    "table1": (
        Row("unsup_10k", "Unsup. 10k", "unsupervised", "10k", 0, {"cosine": (43.6, 44.9), "relu": None}),
        Row("unsup_144k", "Unsup. 144k", "unsupervised", "144k", 0, {"cosine": (66.0, 55.8), "relu": (52.4, 51.2)}),
        Row("sup_2.5k", "Sup. 2.5k", "supervised", None, 2500, {"cosine": (80.4, 60.3), "relu": (82.0, 60.7)}),
        Row("semi_2.5k_10k", "Semi-sup. 2.5k + 10k", "semi_supervised", "10k", 2500,
            {"cosine": (82.8, 62.0), "relu": (84.0, 61.9)}),
        Row("semi_2.5k_144k", "Semi-sup. 2.5k + 144k", "semi_supervised", "144k", 2500, {"cosine": None, "relu": None}),
    ),
    "table2": tuple(
        Row(f"semi_{k}_10k", f"Semi-sup. {k / 1000:g}k + 10k", "semi_supervised", "10k", k, paper)
        for k, paper in (
            (500, {"cosine": (78.0, 60.5), "relu": (79.2, 60.3)}),
            (1000, {"cosine": (82.4, 61.1), "relu": (82.4, 61.1)}),
            (1500, {"cosine": (82.0, 61.3), "relu": (82.8, 61.8)}),
            (2000, {"cosine": (82.0, 61.5), "relu": (82.4, 61.4)}),
            (2500, {"cosine": (82.8, 62.0), "relu": (84.0, 61.9)}),
        )
    ),
    # the paper prints Table 3's means over the three annotators
    "table3": (
        Row("unsup_144k", "Unsup. 144k", "unsupervised", "144k", 0, {"cosine": (60.1, 52.4)}),
        Row("sup_2.5k", "Sup. 2.5k", "supervised", None, 2500, {"cosine": (72.5, 55.6)}),
        Row("semi_2.5k_10k", "Semi-sup. 2.5k + 10k", "semi_supervised", "10k", 2500, {"cosine": (75.2, 57.2)}),
    ),
}


@dataclass
class TableScale(ConfigMixin):
    """How many pairs the paper's counts become, and how long each row trains.

    Attributes:
        name: the scale's name (stated in the table).
        n_10k, n_144k: unlabelled pairs standing for the paper's 10k and 144k.
        n_2_5k: labelled pairs standing for 2.5k (Table 2's 0.5k-2.0k scale with it).
        val_size: validation pairs from the supervision pool (held out; picks the best epoch).
        n_test: test scenes of the synthetic world (real data: its test list).
        epochs, batch_size, lr: training of every row (``None``: the preset's
            :class:`~soundloc.train.TrainConfig`; :class:`TableConfig` fills them in).
        temperature: the attention's softmax temperature (the paper: 1).
        model: changes to the ``cpu`` preset's model (small streams for ``tiny``; the ``paper``
            preset is used as it is).
        world: changes to the synthetic world (smaller images and clips for ``tiny``).
    """

    name: str = "tiny"
    n_10k: int = 24
    n_144k: int = 48
    n_2_5k: int = 16
    val_size: int = 8
    n_test: int = 24
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    temperature: float = 0.1
    model: dict[str, Any] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int(self, "n_10k", "n_144k", "n_2_5k", "val_size", "n_test")
        check_int(self, "epochs", "batch_size", optional=True)
        check_number(self, "temperature", low_open=True)
        check_number(self, "lr", low_open=True, optional=True)

    def unlabelled(self, count: str | None) -> int | None:
        return {"10k": self.n_10k, "144k": self.n_144k, None: None}[count]

    def labelled(self, paper_count: int) -> int:
        """The labelled pairs standing for ``paper_count`` (at least one when any)."""
        return 0 if paper_count == 0 else max(1, round(self.n_2_5k * paper_count / 2500))

    @classmethod
    def named(cls, scale: Scale) -> "TableScale":
        """The preset scales: ``tiny`` (the test suite, seconds per row, a tiny model),
        ``smoke`` (a CPU, minutes per row: the cpu preset's training, 4 epochs) and ``full``
        (the paper's counts, trained as the authors' README command)."""
        tiny_model = dict(visual_width=4, visual_dim=8, visual_stride=8, sound_width=0.0625, sound_dim=8,
                          sound_hidden=8, visual_hidden=8)
        tiny: dict[str, Any] = dict(model=tiny_model, world=dict(image_size=32, clip_seconds=0.5), epochs=1,
                                    batch_size=8, lr=3e-3)
        paper = TrainConfig.paper()
        presets: dict[str, TableScale] = {
            "quick": cls(name="quick", **tiny),
            "tiny": cls(name="tiny", **tiny),
            "smoke": cls(name="smoke", n_10k=300, n_144k=1200, n_2_5k=100, val_size=50, n_test=200, epochs=4,
                         world=dict(clip_seconds=0.5)),
            "full": cls(name="full", n_10k=10_000, n_144k=144_000, n_2_5k=2500, val_size=36, n_test=1000,
                        epochs=paper.epochs, batch_size=paper.batch_size, lr=paper.lr, temperature=1.0),
        }
        return presets[scale]


@dataclass
class TableConfig(ConfigMixin):
    """One table's run: which table, at which scale, on which data, with which seeds, and
    optionally which rows (``rows``: their keys; ``None``: all). A row left out reads "not run"
    in the table: a GPU's few minutes hold one or two rows at the ``full`` scale, not a table."""

    table: TableName = "table1"
    scale: TableScale = field(default_factory=TableScale)
    data: DataConfig = field(default_factory=DataConfig)
    preset: Preset = "cpu"
    seeds: tuple[int, ...] = (0,)
    device: str | None = None
    rows: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_choice(self, "table", "preset")
        training = TrainConfig.preset(self.preset)
        unset = {name: getattr(training, name) for name in ("epochs", "batch_size", "lr")
                 if getattr(self.scale, name) is None}
        self.scale = dataclasses.replace(self.scale, **unset) if unset else self.scale
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"TableConfig.seeds must be non-negative ints, got {self.seeds!r}")
        keys = [r.key for r in TABLES[self.table]]
        unknown = [k for k in self.rows or () if k not in keys]
        if unknown or self.rows == ():
            raise ValueError(f"TableConfig.rows: {unknown or 'none'} not among {self.table}'s rows {keys}")

    def selected(self) -> list[Row]:
        """The rows to run, in the table's order."""
        return [r for r in TABLES[self.table] if self.rows is None or r.key in self.rows]

    @property
    def synthetic(self) -> bool:
        return self.data.source == "synthetic"

    def mechanisms(self) -> tuple[str, ...]:
        return ("cosine",) if self.table == "table3" else ("cosine", "relu")

    def run_dict(self, row: Row, mechanism: str, seed: int) -> dict[str, Any]:
        """The :meth:`~soundloc.experiments.run.RunConfig.from_dict` dictionary of one row."""
        s = self.scale
        data = self.data.to_dict()
        if self.synthetic:
            data["world"] = {**data["world"], **s.world}
            margin = (s.n_144k + s.n_2_5k + s.val_size) // 5  # room for the scenes without a box
            data.update(n_scenes=s.n_144k + s.n_2_5k + s.val_size + margin + s.n_test, n_test=s.n_test)
        data["n_unlabelled"] = s.unlabelled(row.unlabelled)
        return {
            "preset": self.preset,
            "model": {**(s.model if self.preset == "cpu" else {}), "mechanism": mechanism, "temperature": s.temperature},
            "data": data,
            "train": {"scheme": row.scheme, "epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr,
                      "seed": seed, "checkpoint_every": None, "device": self.device},
            "labelled": s.labelled(row.labelled),
            "val_size": s.val_size,
            "split_seed": seed,
        }


def table_config(table: str = "table1", scale: str = "tiny", data: str | None = "synthetic",
                 annotated: str | None = None, packed: bool = False, preset: str | None = None,
                 seeds: int | str | Iterable[int] = 0, rows: str | Sequence[str] | None = None,
                 device: str | None = None, epochs: int | None = None) -> TableConfig:
    """The :class:`TableConfig` of ``soundloc experiment TABLE --scale SCALE --data DATA ...``.

    The same defaults as the command: ``data`` ``"synthetic"`` (or ``None``) is the built-in
    world, anything else a prepared folder (``packed``: read through its packed cache), with
    ``annotated`` the prepared annotated set (default: the data folder); ``preset`` ``None`` is
    ``cpu`` on the synthetic world and ``paper`` on real data; ``rows`` comma-separated keys or a
    sequence (``None``: every row). ``epochs`` replaces the scale's number of epochs (``None``:
    keep it), so that a run can be shortened or lengthened without a new scale.
    """
    synthetic = data in (None, "synthetic")
    if packed and synthetic:
        raise ValueError("packed needs a prepared data folder, not the synthetic world")
    if annotated is not None and synthetic:
        raise ValueError("annotated is for a prepared data folder, not the synthetic world")
    if synthetic:
        data_config = DataConfig()
    else:
        data_config = DataConfig(source="packed" if packed else "folder", root=str(data),
                                 annotated=None if annotated is None else str(annotated))
    table_scale = TableScale.named(scale)  # type: ignore[arg-type]
    if epochs is not None:
        table_scale = dataclasses.replace(table_scale, epochs=epochs)
    if isinstance(rows, str):
        rows = [k.strip() for k in rows.split(",") if k.strip()]
    return TableConfig(table=table, scale=table_scale, data=data_config,  # type: ignore[arg-type]
                       preset=preset or ("cpu" if synthetic else "paper"),  # type: ignore[arg-type]
                       seeds=parse_seeds(seeds), device=device, rows=None if rows is None else tuple(rows))


__all__ = ["BASELINES", "MECHANISM_LABEL", "MECHANISM_SHORT", "PAPER_RANDOM", "TABLES", "Mechanism", "Row", "TableConfig", "TableName",
           "TableScale", "table_config"]
