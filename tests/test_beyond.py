"""Retrieval scores (soundloc.metrics.retrieval) against values worked out by hand, and the
drivers of soundloc.experiments.beyond (retrieval, the negative-audio test) on a tiny model."""
from __future__ import annotations

import math

import pytest
import torch

from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, world_splits
from soundloc.experiments import beyond
from soundloc.metrics import evaluate
from soundloc.metrics.retrieval import (chance_recall_at_k, first_positive_rank, median_rank, recall_at_k,
                                        retrieval_scores)
from soundloc.models import ModelConfig, build_model, min_samples_for
from soundloc.train import predict_attention

SIM = torch.tensor([[0.9, 0.1, 0.5],
                    [0.2, 0.8, 0.8],
                    [0.3, 0.4, 0.1]])
EYE = torch.eye(3, dtype=torch.bool)


def test_ranks_by_hand_ties_count_against_the_query() -> None:
    # query 0: its image scores highest -> 1; query 1: a negative ties with it -> 2;
    # query 2: both negatives score higher -> 3
    assert first_positive_rank(SIM, EYE).tolist() == [1, 2, 3]
    assert recall_at_k(SIM, EYE, ks=(1, 2, 5)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 5: 1.0}
    assert median_rank(SIM, EYE) == 2.0
    # a constant matrix gets the worst rank, not the best
    assert first_positive_rank(torch.zeros(3, 3), EYE).tolist() == [3, 3, 3]


def test_several_positives_only_negatives_push_down() -> None:
    sim = torch.tensor([[0.1, 0.9, 0.5, 0.7]])
    pos = torch.tensor([[True, False, True, True]])  # best positive 0.7; one negative (0.9) above
    assert first_positive_rank(sim, pos).tolist() == [2]
    assert median_rank(torch.tensor([[3.0, 2, 1], [1, 2, 3]]), torch.tensor([[False, True, False]] * 2)) == 2.0


def test_chance_recall_is_hypergeometric() -> None:
    pos = torch.tensor([[True, False, False, False], [True, True, False, False]])
    # one positive of 4: K/G; two of 4 with K = 2: 1 - C(2,2)/C(4,2) = 5/6
    got = chance_recall_at_k(pos, ks=(1, 2, 9))
    assert got[1] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert got[2] == pytest.approx((2 / 4 + 5 / 6) / 2)
    assert got[9] == 1.0
    s = retrieval_scores(SIM, EYE, ks=(1,))
    assert s.chance == {1: pytest.approx(1 / 3)} and s.gallery == 3 and s.median_rank == 2.0


def test_retrieval_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="no positive"):
        recall_at_k(SIM, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        recall_at_k(SIM, torch.eye(3))
    with pytest.raises(ValueError, match="ks"):
        recall_at_k(SIM, EYE, ks=(0,))


def test_map_change_by_hand() -> None:
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    b = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    u = torch.full((1, 2, 2), 0.25)
    tv, shift = beyond.map_change(a, b)
    assert tv.tolist() == [1.0] and shift.tolist() == [pytest.approx(math.sqrt(2))]
    tv, shift = beyond.map_change(a, u)
    assert tv.tolist() == [0.75] and shift.tolist() == [0.0]  # uniform: argmax is the first cell


def test_replacement_sounds() -> None:
    w = torch.randn(6, 100) * 0.1
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    g = torch.Generator().manual_seed(0)
    silent, src = beyond.replacement_sounds(w, "silence", labels, g)
    assert silent.abs().sum() == 0 and (src == -1).all()
    noise, _ = beyond.replacement_sounds(w, "noise", labels, g)
    assert torch.allclose(noise.pow(2).mean(1).sqrt(), w.pow(2).mean(1).sqrt(), rtol=0.3)
    other, src = beyond.replacement_sounds(w, "other_class", labels, g)
    assert (labels[src] != labels).all() and torch.equal(other, w[src])
    same, src = beyond.replacement_sounds(w, "same_class", labels, g)
    assert (labels[src] == labels).all() and (src != torch.arange(6)).all()
    _, src = beyond.replacement_sounds(w[:3], "same_class", torch.tensor([0, 1, 1]), g)
    assert src.tolist() == [0, 2, 1]  # alone in its class: keeps its own clip
    with pytest.raises(ValueError, match="labels"):
        beyond.replacement_sounds(w, "other_class", None, g)


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, SyntheticDataset]:
    world = SyntheticWorld(WorldConfig(image_size=32, clip_seconds=0.5), seed=3)
    splits = world_splits(world, 24, 12, 0)
    torch.manual_seed(0)
    model = build_model(ModelConfig.cpu(visual_width=4, visual_dim=8, visual_stride=8, sound_width=0.0625, sound_dim=8,
                                        sound_hidden=8, visual_hidden=8, image_size=32,
                                        clip_samples=min_samples_for("short"), temperature=0.1))
    return model, SyntheticDataset(world, splits.test, grid=None, labelled=False)


def test_retrieval_scores_are_minus_d_plus(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    r = beyond.retrieval(model, ds, batch_size=5)
    n = len(ds)
    assert r.similarity.shape == (n, n) and r.ids == ds.ids and model.training
    model.eval()
    with torch.no_grad():  # sound 2 against image 4, one forward pass of the full model
        out = model(ds[4].image[None], ds[2].waveform[None])
    model.train()
    assert float(r.similarity[2, 4]) == pytest.approx(-float((out.f_v - out.f_s).norm()), rel=1e-4, abs=1e-5)
    pos = r.positives("class")
    assert pos.shape == (n, n) and pos.diagonal().all()
    assert r.scores("instance", ks=(1, n)).recall[n] == 1.0
    assert r.scores("class", direction="image_to_sound").gallery == n
    assert r.top(0, 3) == r.similarity[0].argsort(descending=True)[:3].tolist()
    cos = beyond.retrieval(model, ds, score="cosine", batch_size=5)
    assert float(cos.similarity[2, 4]) == pytest.approx(float(torch.cosine_similarity(out.f_v, out.f_s)), abs=1e-5)
    with pytest.raises(ValueError, match="score"):
        beyond.retrieval(model, ds, score="dot")


def test_negative_audio_test(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    res = beyond.negative_audio_test(model, ds, seed=1, batch_size=5)
    _, maps = predict_attention(model, ds)
    assert torch.allclose(res.original, maps, atol=1e-6)
    ev = evaluate(maps, [ds[k].annotation for k in range(len(ds))], baselines=False, per_annotator=False)
    assert res.scores["own sound"] == (pytest.approx(ev.success), pytest.approx(ev.auc))
    assert res.n_scored == len(ds) and set(res.maps) == set(beyond.NEGATIVE_KINDS)
    rows = {row["sound"]: row for row in res.rows()}
    assert 0 <= rows["silence"]["tv_mean"] <= 1 and 0 <= rows["noise"]["same_peak"] <= 1
    assert rows["other_class"]["success_change"] == pytest.approx(res.scores["other_class"][0] - ev.success)
    again = beyond.negative_audio_test(model, ds, kinds=("noise",), seed=1, batch_size=5)
    assert torch.equal(again.maps["noise"], beyond.negative_audio_test(model, ds, kinds=("noise",), seed=1).maps["noise"])
    with pytest.raises(ValueError, match="unknown kind"):
        beyond.negative_audio_test(model, ds, kinds=("music",))


def test_retrieval_table_by_hand() -> None:
    # SIM's instance ranks are 1, 2, 3 (test_ranks_by_hand...): R@1 = 1/3, R@2 = 2/3, median 2.
    # With labels [0, 1, 1] each sound's best right image beats every wrong one (sound 1: 0.8 over
    # 0.2; sound 2: 0.4 over 0.3): class ranks 1, 1, 1. Chance, class: sound 0 has 1 right image
    # of 3, sounds 1 and 2 have 2: R@1 (1/3 + 2/3 + 2/3) / 3 = 5/9, R@2 (2/3 + 1 + 1) / 3 = 8/9.
    r = beyond.Retrieval(ids=["a", "b", "c"], similarity=SIM, labels=torch.tensor([0, 1, 1]))
    md = beyond.retrieval_markdown({("semi_supervised", "cosine"): r}, ks=(1, 2))
    lines = md.splitlines()
    assert "gallery of 3 test scenes" in lines[0]
    assert lines[2] == "| model | score | right images | R@1 | R@2 | median rank |"
    assert lines[3] == "|:---|:---|:---|---:|---:|---:|"
    assert "| semi-supervised | cosine | instance | 0.333 | 0.667 | 2.0 |" in lines
    assert "| semi-supervised | cosine | class | 1.000 | 1.000 | 1.0 |" in lines
    assert "| chance (random ranking) | – | instance | 0.333 | 0.667 | – |" in lines
    assert "| chance (random ranking) | – | class | 0.556 | 0.889 | – |" in lines
    without = beyond.retrieval_markdown({("u", "distance"): beyond.Retrieval(ids=["a", "b", "c"], similarity=SIM)})
    assert "| class |" not in without and "| instance |" in without


def test_negative_audio_table_by_hand() -> None:
    original = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    moved = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    tv, shift = beyond.map_change(original, moved)
    res = beyond.NegativeAudioResult(
        ids=["a"], original=original, maps={"silence": moved}, tv={"silence": tv}, peak_shift={"silence": shift},
        sources={"silence": torch.tensor([-1])}, tv_uniform=torch.tensor([0.75]),
        scores={"own sound": (1.0, 0.8), "silence": (0.0, 0.25)}, n_scored=1)
    md = beyond.negative_audio_markdown({"unsupervised": res})
    lines = md.splitlines()
    assert "on 1 annotated test scenes (2×2 grid)" in lines[0]
    assert "| unsupervised | own | – | – | – | 1.000 | 0.800 |" in lines
    # the peak moves from cell (0, 0) to (1, 1): sqrt(2) cells; none kept its peak
    assert "| unsupervised | silence | 1.000 | 1.41 | 0.000 | 0.000 | 0.250 |" in lines
    assert "unsupervised 0.750" in lines[-1]
    with pytest.raises(ValueError, match="empty"):
        beyond.negative_audio_markdown({})
