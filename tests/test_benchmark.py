"""soundloc.experiments.benchmark and ``soundloc benchmark`` on a tiny model: the sets, the pairs,
the plumbing of the three parts (checked against the model and the metrics called directly),
the report files, and one-line errors with exit status 2."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from conftest import CLIP, tiny_model
from soundloc.cli import main
from soundloc.data.layout import read_annotations, write_annotations
from soundloc.data.synthetic import SyntheticWorld, WorldConfig, write_world
from soundloc.experiments import benchmark as bm
from soundloc.metrics import evaluate, gt_maps
from soundloc.metrics.openset import ground_truth_areas, open_set_scores
from soundloc.models import save_model
from soundloc.train import predict_attention



@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_model(0, temperature=0.1).eval()


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    # off-screen and ambient scenes made common so that a few dozen scenes hold some of each
    return SyntheticWorld(WorldConfig(image_size=32, clip_seconds=CLIP / 22050, offscreen_p=0.2, ambient_p=0.2), seed=4)


def test_synthetic_set_pairs(world: SyntheticWorld) -> None:
    s = bm.synthetic_set(world, range(100, 140), seed=3)
    scenes = {sc.id: sc for sc in (world.scene(i) for i in range(100, 140))}
    kinds = {i: sc.kind for i, sc in scenes.items()}
    assert set(s.ids) == {i for i, k in kinds.items() if k != "offscreen"}  # annotated scenes
    assert set(s.sounding) == {i for i, k in kinds.items() if k == "object"}
    natural = [p for p in s.non_sounding if p.origin != "drawn"]
    assert {p.image for p in natural} == {i for i, k in kinds.items() if k in ("offscreen", "ambient")}
    assert all(p.image == p.sound for p in natural)
    drawn = [p for p in s.non_sounding if p.origin == "drawn"]
    assert drawn and {p.image for p in drawn} <= set(s.sounding)
    for p in drawn:  # the partner's class is neither the frame's sounding object nor a silent one
        frame = scenes[p.image]
        assert scenes[p.sound].label not in {frame.label, *frame.distractor_labels} and scenes[p.sound].kind == "object"
    again = bm.synthetic_set(world, range(100, 140), seed=3)
    assert again.non_sounding == s.non_sounding
    assert bm.synthetic_set(world, range(100, 140), seed=4).non_sounding != s.non_sounding


def test_pair_lists_round_trip_in_slavcs_format(tmp_path: Path) -> None:
    pairs = [bm.NonSounding("a_1", "b_2", "drawn"), bm.NonSounding("c_3", "a_1", "drawn")]
    path = bm.write_pairs_csv(tmp_path / "pairs.csv", pairs)
    assert path.read_text().splitlines() == ["image,audio,kind", "a_1,b_2,non-sounding", "c_3,a_1,non-sounding"]
    assert [(p.image, p.sound) for p in bm.read_pairs_csv(path)] == [("a_1", "b_2"), ("c_3", "a_1")]
    # SLAVC's own lists: sounding rows and extensions are skipped / dropped
    (tmp_path / "slavc.csv").write_text("x.jpg,x.wav,sounding\ny.jpg,z.wav,non-sounding\n")
    assert [(p.image, p.sound, p.origin) for p in bm.read_pairs_csv(tmp_path / "slavc.csv")] == [("y", "z", "published")]
    (tmp_path / "bad.csv").write_text("image,audio,kind\nonly,two\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 2"):
        bm.read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "none.csv").write_text("a,b,sounding\n")
    with pytest.raises(ValueError, match="no row of kind"):
        bm.read_pairs_csv(tmp_path / "none.csv")


def test_run_on_the_synthetic_world_matches_the_parts_called_directly(model, world) -> None:  # type: ignore[no-untyped-def]
    s = bm.synthetic_set(world, range(100, 140), seed=0)
    st = bm.BenchmarkSettings(seed=1, random_repeats=2, batch_size=7)
    res = bm.run_benchmark(model, s, st)
    # localization: the maps of the trainer's own prediction function (same batches: the same
    # numbers), scored by evaluate
    _, maps = predict_attention(model, s.items, batch_size=7)
    anns = [s.items.scene(k).annotation for k in range(len(s.items))]
    ev = evaluate(maps, anns, seed=1, random_repeats=2, random_grid=(4, 4), per_annotator=False)
    loc = res["localization"]
    assert loc["n"] == len(s.items)
    assert loc["model"]["success"] == pytest.approx(ev.success) and loc["model"]["auc"] == pytest.approx(ev.auc)
    assert loc["baselines"]["centre prior"]["auc"] == pytest.approx(ev.baselines["centre prior"].auc)
    # extended: each pair localized alone by a full forward pass gives the recorded confidences
    # (tolerance: one pair against batches of 7 differ in the last bits of the convolutions), and
    # the recorded pairs give the reported scores
    ext = res["extended"]
    pool = {i: k for k, i in enumerate(s.pool.ids)}
    with torch.no_grad():
        def peak(img_id: str, snd_id: str) -> float:
            out = model(s.pool[pool[img_id]].image[None], s.pool[pool[snd_id]].waveform[None])
            return float(out.attention.max())
        c_snd = [peak(i, i) for i in s.sounding]
        c_neg = [peak(p.image, p.sound) for p in s.non_sounding]
    pr = ext["pairs"]
    assert pr["confidence"]["peak"] == pytest.approx(c_snd + c_neg, rel=1e-4)
    assert pr["sounding"] == [True] * len(c_snd) + [False] * len(c_neg)
    pos = {i: k for k, i in enumerate(s.ids)}
    snd = [pos[i] for i in s.sounding]
    assert pr["localized"][: len(snd)] == [bool(ev.ciou[k] >= 0.5) for k in snd]
    ref = open_set_scores(pr["confidence"]["peak"][: len(snd)], ev.ciou[snd], ground_truth_areas(gt_maps([anns[k] for k in snd])),
                          pr["confidence"]["peak"][len(snd):])
    assert (ext["n_sounding"], ext["n_non_sounding"]) == (len(s.sounding), len(s.non_sounding))
    assert ext["model"]["ap"] == ref.ap and ext["model"]["max_f1"] == ref.max_f1 and ext["model"]["by_size"] == ref.by_size
    assert ext["origins"] == s.origins() and set(ext["confidences"]) == {"peak", "cosine_peak", "cosine_top_quarter", "match"}
    assert set(ext["baselines"]) == {"whole image", "centre prior", "random"}
    # negative: every kind ran (the synthetic world has classes and knows what is in view)
    neg = res["negative"]
    assert [r["sound"] for r in neg["model"]] == list(neg["kinds"]) and not neg["skipped"]
    assert [r["tv_mean"] for r in neg["baselines"]["centre prior"]] == [0.0] * len(neg["kinds"])
    text = bm.benchmark_markdown({"model": {"name": "tiny"}, "sets": {"synthetic": res}})
    for word in ("cIoU@0.5", "AP", "max-F1", "huge", "random TV", "same_class", "centre prior"):
        assert word in text
    # same settings, same numbers
    assert bm.run_benchmark(model, s, dataclasses.replace(st, parts=("extended",)))["extended"] == ext


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, world: SyntheticWorld) -> Path:
    """The world written to disk as a prepared folder, its annotations given VGG-SS-like classes."""
    root = tmp_path_factory.mktemp("prepared")
    write_world(world, root, n=40, n_test=20, progress=False)
    anns = read_annotations(root / "annotations.json")
    named = {i: dataclasses.replace(a, category=f"class {world.scene(world.index_of(i)).label}") for i, a in anns.items()}
    write_annotations(root / "annotations.json", named)
    return root


def test_folder_set_reads_classes_and_checks_ids(model, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = bm.folder_set("vggss", folder, "test", 32, CLIP / 22050, 22050)
    assert s.protocol.consensus == 1 and s.protocol.box_union  # the VGG-SS preset by default
    assert s.labels is not None and len(s.non_sounding) > 0 and "another class" in s.rule
    for p in s.non_sounding:
        assert s.labels[p.sound] != s.labels[p.image]
    bad = tmp_path / "pairs.csv"
    bad.write_text("syn000025,nope_1,non-sounding\n")
    with pytest.raises(ValueError, match="nope_1"):
        bm.folder_set("vggss", folder, "test", 32, CLIP / 22050, 22050, pairs=bad)
    with pytest.raises(ValueError, match="not in"):
        bm.folder_set("flickr", folder, ["missing_1"], 32, CLIP / 22050, 22050)


def test_cli_writes_the_report(model, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    ckpt = tmp_path / "tiny.pt"
    save_model(ckpt, model)
    out = tmp_path / "bench"
    rc = main(["benchmark", "--checkpoint", str(ckpt), "--vggss", str(folder), "--vggss-ids", "test", "--synthetic",
               "--synthetic-scenes", "100:30", "--random-repeats", "2", "--batch-size", "8", "--out", str(out),
               "--quiet", "--kinds", "silence", "offscreen", "--name", "tiny"])
    text = capsys.readouterr().out
    assert rc == 0 and "## vggss" in text and "## synthetic" in text
    doc = json.loads((out / "benchmark.json").read_text())
    assert set(doc["sets"]) == {"vggss", "synthetic"} and doc["model"]["name"] == "tiny"
    assert doc["sets"]["vggss"]["protocol"]["name"] == "vggss" and doc["sets"]["synthetic"]["protocol"]["name"] == "lvs"
    assert [r["sound"] for r in doc["sets"]["vggss"]["negative"]["model"]] == ["silence", "offscreen"]
    for key in ("command", "date", "device", "version", "git_commit"):
        assert key in doc
    assert (out / "benchmark.md").read_text().startswith("# Benchmark of tiny")
    listed = bm.read_pairs_csv(out / "non_sounding_vggss.csv")
    assert len(listed) == doc["sets"]["vggss"]["extended"]["n_non_sounding"]
    # the written list given back: the same extended scores
    out2 = tmp_path / "bench2"
    assert main(["benchmark", "--checkpoint", str(ckpt), "--vggss", str(folder), "--vggss-ids", "test",
                 "--vggss-pairs", str(out / "non_sounding_vggss.csv"), "--parts", "extended", "--random-repeats", "2",
                 "--out", str(out2), "--quiet"]) == 0
    capsys.readouterr()
    doc2 = json.loads((out2 / "benchmark.json").read_text())
    assert doc2["sets"]["vggss"]["extended"]["model"]["ap"] == pytest.approx(doc["sets"]["vggss"]["extended"]["model"]["ap"])


@pytest.mark.parametrize("args, message", [
    (["--out", "X"], "give at least one set"),
    (["--out", "X", "--flickr", "NOPE"], "--flickr"),
    (["--out", "X", "--synthetic", "--checkpoint", "NOPE.pt"], "--checkpoint"),
    (["--out", "X", "--synthetic", "--batch-size", "0"], "--batch-size"),
    (["--out", "X", "--vggss-pairs", "p.csv"], "--vggss-pairs needs --vggss"),
    (["--out", "X", "--flickr", "FOLDER", "--flickr-ids", "nosuchsplit"], "nosuchsplit"),
])
def test_cli_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path, folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tmp_path / "out") if a == "X" else str(folder) if a == "FOLDER" else a for a in args]
    rc = main(["benchmark", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_scheme_models_reuse_a_run_of_the_same_experiment(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from soundloc.experiments import pigeon
    from soundloc.experiments.pigeon import PigeonConfig
    from soundloc.utils.files import write_json

    config = PigeonConfig.at_scale("quick")
    run = tmp_path / "run"
    for scheme in ("unsupervised", "supervised", "semi_supervised"):
        save_model(run / "models" / f"{scheme}.pt", model)
    # device, threads, workers and the cache folder do not change the numbers
    recorded = dataclasses.replace(config, device="cuda", threads=3, workers=2, pretrain_cache="x").to_dict()
    write_json(run / "results.json", {"seed": 0, "config": recorded, "command": "soundloc pigeon ..."})
    assert bm.same_experiment(recorded, config)
    assert not bm.same_experiment(dataclasses.replace(config, epochs=config.epochs + 1), config)
    trained: list[Path] = []

    def fake_run(cfg, out, seed=0, progress=True, command=None):  # type: ignore[no-untyped-def]
        trained.append(Path(out))
        for scheme in ("unsupervised", "supervised", "semi_supervised"):
            save_model(Path(out) / "models" / f"{scheme}.pt", model)

    monkeypatch.setattr(pigeon, "run_pigeon", fake_run)
    models, origin = bm.scheme_models(config, 0, run, tmp_path / "new", progress=False)
    assert set(models) == {"unsupervised", "supervised", "semi_supervised"} and not origin["trained_now"] and not trained
    # another seed, or another experiment, is trained anew
    _, origin = bm.scheme_models(config, 1, run, tmp_path / "new", progress=False)
    assert origin["trained_now"] and trained == [tmp_path / "new"]
    _, origin = bm.scheme_models(dataclasses.replace(config, lr=0.5), 0, run, tmp_path / "new2", progress=False)
    assert origin["trained_now"] and trained[-1] == tmp_path / "new2"


def test_comparison_tables(model, world) -> None:  # type: ignore[no-untyped-def]
    s = bm.synthetic_set(world, range(100, 125), seed=0)
    st = bm.BenchmarkSettings(random_repeats=2, kinds=("silence", "same_class"))
    res = bm.benchmark_schemes({"a": model, "b": model}, s, st)
    header, rows = bm.comparison_rows(res, "extended")
    assert header[:5] == ["", "AP", "AP if blind", "max-F1", "precision"] and [r[0] for r in rows] == ["a", "b", "whole image",
                                                                                        "centre prior", "random"]
    assert rows[0][1:] == rows[1][1:]  # the same model twice: the same numbers
    header, rows = bm.negative_comparison_rows(res, "tv_mean")
    assert header == ["sound", "a", "b", "random maps"] and [r[0] for r in rows] == ["silence", "same_class"]
    with pytest.raises(ValueError, match="part"):
        bm.comparison_rows(res, "negative")


def test_a_set_without_classes_skips_what_needs_them(model, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Flickr-SoundNet's annotations name no class: the partners are any other clip, and the
    # kinds that need classes are skipped and said so
    root = tmp_path / "flickr"
    write_world(world, root, n=30, n_test=15, progress=False)
    s = bm.folder_set("flickr", root, "test", 32, CLIP / 22050, 22050, seed=2)
    assert s.labels is None and s.protocol.consensus == 2 and "may be in view" in s.rule
    assert all(p.sound != p.image for p in s.non_sounding) and len(s.non_sounding) == len(s.items)
    res = bm.run_benchmark(model, s, bm.BenchmarkSettings(parts=("negative",), random_repeats=2))
    neg = res["negative"]
    assert neg["kinds"] == ["silence", "noise", "offscreen"] and set(neg["skipped"]) == {"other_class", "same_class"}
    assert "may be in view" in neg["offscreen_rule"] and "not run" in bm.set_markdown(res)
