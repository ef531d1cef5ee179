"""Retrieval scores (soundloc.metrics.retrieval) against values worked out by hand, and the
drivers of soundloc.experiments.beyond (retrieval, the negative-audio test) on a tiny model."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_model
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, world_splits
from soundloc.experiments import beyond
from soundloc.metrics import evaluate
from soundloc.metrics.retrieval import (chance_recall_at_k, first_positive_rank, median_rank, recall_at_k,
                                        retrieval_scores)
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
    model = tiny_model(0, temperature=0.1)
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


#: Maps of two batchings agree to rounding, not bit for bit: another batch size may run other
#: CPU kernels (other blockings of the same float32 sums, chosen per CPU), which agree to ~1e-6
#: of the magnitudes summed; a cosine score in [-1, 1] moves by <= 1e-6 and the softmax at
#: temperature 0.1 turns that into a relative change of <= 2 x 1e-6 / 0.1 in every cell's mass.
BATCHING_RTOL = 2e-5


def test_negative_audio_test(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    res = beyond.negative_audio_test(model, ds, seed=1, batch_size=5)
    _, maps = predict_attention(model, ds)  # its own batch size (32): another batching
    torch.testing.assert_close(res.original, maps, rtol=BATCHING_RTOL, atol=0.0)
    # the scores are evaluate()'s on its own maps (the thresholds of cIoU would turn a rounding
    # difference of another batching into a step, however rarely: score the same maps)
    ev = evaluate(res.original, [ds[k].annotation for k in range(len(ds))], baselines=False, per_annotator=False)
    assert res.scores["own sound"] == (ev.success, ev.auc)
    assert res.n_scored == len(ds) and set(res.maps) == set(beyond.NEGATIVE_KINDS)
    rows = {row["sound"]: row for row in res.rows()}
    assert 0 <= rows["silence"]["tv_mean"] <= 1 and 0 <= rows["noise"]["same_peak"] <= 1
    assert rows["other_class"]["success_change"] == pytest.approx(res.scores["other_class"][0] - ev.success)
    # same seed, same batching, same process: the same noise and the same maps, bit for bit
    noise = beyond.negative_audio_test(model, ds, kinds=("noise",), seed=1, batch_size=5).maps["noise"]
    assert torch.equal(noise, beyond.negative_audio_test(model, ds, kinds=("noise",), seed=1, batch_size=5).maps["noise"])
    # another batching draws the same noise: the same maps up to rounding
    torch.testing.assert_close(beyond.negative_audio_test(model, ds, kinds=("noise",), seed=1).maps["noise"],
                               noise, rtol=BATCHING_RTOL, atol=0.0)
    with pytest.raises(ValueError, match="unknown kind"):
        beyond.negative_audio_test(model, ds, kinds=("music",))


def test_offscreen_partners_by_hand() -> None:
    labels = torch.tensor([0, 1, 2, 1])
    visible = [{0, 1}, {1}, {0, 1, 2}, {1, 2}]
    src, rule = beyond.offscreen_partners(4, labels, visible, torch.Generator().manual_seed(5))
    # pair 0 sees classes 0 and 1: only pair 2 (class 2) qualifies; pair 2 sees every class: none;
    # pair 3 sees 1 and 2: only pair 0; pair 1 sees 1: pairs 0 and 2 (drawn)
    assert int(src[0]) == 2 and int(src[2]) == -1 and int(src[3]) == 0 and int(src[1]) in (0, 2)
    assert "not in view" in rule
    # only the own class known to be in view (VGG-SS): pair 1 (class 1) may take 0 or 2, never 3
    src, rule = beyond.offscreen_partners(4, labels, None, torch.Generator().manual_seed(5))
    assert all(int(labels[j]) != int(labels[i]) for i, j in enumerate(src.tolist())) and "another class" in rule
    # no classes at all (Flickr-SoundNet): any other pair
    src, rule = beyond.offscreen_partners(3, None, None, torch.Generator().manual_seed(5))
    assert (src != torch.arange(3)).all() and (src >= 0).all() and "may be in view" in rule
    # candidates restrict the partners; the same seed draws the same partners
    src, _ = beyond.offscreen_partners(4, labels, None, torch.Generator().manual_seed(1), candidates=[0, 1])
    assert src.tolist()[:2] == [1, 0] and src.tolist()[2] in (0, 1) and int(src[3]) == 0
    again, _ = beyond.offscreen_partners(4, labels, None, torch.Generator().manual_seed(1), candidates=[0, 1])
    assert torch.equal(src, again)


def test_change_row_by_hand() -> None:
    row = beyond.change_row(torch.tensor([0.2, 0.4]), torch.tensor([0.0, 2.0]), torch.tensor([0.5, 0.3]),
                            torch.tensor([0.4, 0.6]))
    # TV mean 0.3; peak shift mean 1 and median (0 + 2) / 2 = 1; one of two peaks stayed;
    # confidence change ((0.4 - 0.5) + (0.6 - 0.3)) / 2 = 0.1; one of two dropped
    assert row == {"n": 2, "tv_mean": pytest.approx(0.3), "peak_shift_mean": 1.0, "peak_shift_median": 1.0,
                   "same_peak": 0.5, "confidence_change": pytest.approx(0.1), "confidence_lower": 0.5}


def test_noise_keeps_each_clips_loudness_and_does_not_depend_on_the_batch() -> None:
    w = torch.randn(3, 2000) * torch.tensor([[0.01], [0.1], [0.3]])
    seeds = torch.tensor([7, 8, 9])
    n = beyond.noise_like(w, seeds)
    # RMS of 2,000 Gaussian samples: within a few percent of the clip's (std of the estimate ~ 1/sqrt(4000))
    assert torch.allclose(n.pow(2).mean(1).sqrt(), w.pow(2).mean(1).sqrt(), rtol=0.1)
    assert torch.equal(beyond.noise_like(w[1:2], seeds[1:2]), n[1:2])


def test_negative_audio_baselines() -> None:
    rows = beyond.negative_audio_baselines(50, (4, 4), kinds=("silence", "same_class"), seed=3)
    for name in ("whole image", "centre prior"):  # the same map whatever the sound: nothing moves
        assert [r["tv_mean"] for r in rows[name]] == [0.0, 0.0]
        assert [r["same_peak"] for r in rows[name]] == [1.0, 1.0] and rows[name][0]["confidence_change"] == 0.0
    rnd = rows["random"]
    # two independent draws of uniform maps move for any sound: a fresh draw for each replacement
    assert all(0.05 < r["tv_mean"] < 0.5 for r in rnd) and all(0.2 < r["confidence_lower"] < 0.8 for r in rnd)
    assert beyond.negative_audio_baselines(50, (4, 4), kinds=("silence", "same_class"), seed=3) == rows


def test_confidences_are_the_models_own_numbers(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    res = beyond.negative_audio_test(model, ds, kinds=("silence",), seed=0, batch_size=4)
    model.eval()
    with torch.no_grad():  # pair 3 with its own sound, one forward pass of the full model
        out = model(ds[3].image[None], ds[3].waveform[None])
    model.train()
    own = res.confidences["own sound"]
    assert float(own["peak"][3]) == pytest.approx(float(out.attention.max()), rel=1e-5)
    assert float(own["cosine_peak"][3]) == pytest.approx(float(out.extras["scores"].max()), rel=1e-5, abs=1e-6)
    k = -(-out.extras["scores"].numel() // 4)
    top = out.extras["scores"].flatten().sort(descending=True).values[:k].mean()
    assert float(own["cosine_top_quarter"][3]) == pytest.approx(float(top), rel=1e-5, abs=1e-6)
    assert float(own["match"][3]) == pytest.approx(-float((out.f_v - out.f_s).norm()), rel=1e-5)
    row = res.rows("match")[0]
    diff = res.confidences["silence"]["match"] - own["match"]
    assert row["confidence_change"] == pytest.approx(float(diff.mean()))


def test_offscreen_pairs_without_a_partner_are_left_out(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    n = len(ds)
    everything = [set(range(4))] * n  # every class in view in every frame: no off-screen sound exists
    res = beyond.negative_audio_test(model, ds, kinds=("offscreen", "silence"), seed=0, batch_size=5, visible=everything)
    assert not res.valid["offscreen"].any() and res.valid["silence"].all()
    rows = {r["sound"]: r for r in res.rows()}
    assert rows["offscreen"] == {"sound": "offscreen", "n": 0} and rows["silence"]["n"] == n
    labels = beyond.pair_labels(ds)
    part = [{int(labels[i])} for i in range(n)]  # only the own class in view
    res = beyond.negative_audio_test(model, ds, kinds=("offscreen",), seed=0, batch_size=5, visible=part)
    src = res.sources["offscreen"]
    assert res.valid["offscreen"].all() and (labels[src] != labels).all()
    with pytest.raises(ValueError, match="labels"):
        beyond.negative_audio_test(model, ds, kinds=("same_class",), labels=torch.zeros(2, dtype=torch.long))


def test_retrievals_give_every_score_from_one_pass(tiny) -> None:  # type: ignore[no-untyped-def]
    model, ds = tiny
    both = beyond.retrievals(model, ds, batch_size=5)
    for score in beyond.SCORES:
        one = beyond.retrieval(model, ds, score=score, batch_size=5)
        assert torch.equal(both[score].similarity, one.similarity) and both[score].ids == one.ids
