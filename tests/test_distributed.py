"""Data-parallel training (torchrun + DistributedDataParallel) against one process.

Two processes on the CPU (gloo backend, torchrun's environment variables on 127.0.0.1) train a
tiny model; both must end with the same weights, and those must be, up to float rounding, the
weights of one process trained on the same global batches with the same negatives (Senocak et
al., CVPR 2018, Sec. 3.2: each pair's negative is drawn from the whole global batch).

Up to float rounding, not bit for bit: two processes sum each gradient over their half-batches
and then all-reduce, where one process sums the whole batch; the same float32 sums in another
order (and other kernels' blockings, which depend on the CPU) agree to about 1e-6 of the
magnitudes summed (log2 of ~1e5 terms times the unit roundoff 6e-8). The runs train with SGD,
whose step is linear in the gradient, so that rounding moves a weight by at most
lr x 1e-6 per step, times 1 / (1 - momentum) = 10 for the momentum: :data:`ATOL` over the run's
steps. Adam would not do: it divides by sqrt(v), so a gradient that is zero up to rounding moves
its weight by up to lr per step in either direction (6.7e-5 was seen at lr 3e-3 on another CPU).
A wrong gradient (not averaged, other negatives) moves weights by lr x |g|, ~1e-3 per step. The
semi-supervised run also leaves unreadable pairs out (unequal local batches); a supervised run
on cached sound features takes the other path through DDP. The 2-process checkpoint must also
resume in one process as the one-process run continues.

Run as a script, this file is one rank of that world (the test launches it twice).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import tiny_model as tiny_model_with_batchnorm, tone_pairs
from soundloc.data import Sample
from soundloc.train import EpochOrder, ShardedEpochOrder, TrainConfig, Trainer, read_checkpoint, save_checkpoint

WORLD = 2
LR, MOMENTUM = 0.05, 0.9
STEPS = 4  # optimizer steps per epoch: 16 pairs (2 unreadable) in global batches of 4


def atol(steps: int) -> float:
    """How far two runs that differ only in the order of their float32 sums may drift apart
    after ``steps`` SGD steps (module docstring): lr x 1e-6 x 1 / (1 - momentum) per step."""
    return steps * LR * 1e-6 / (1 - MOMENTUM)


def tiny_model(seed: int = 0) -> nn.Module:
    """The tiny model without BatchNorm: on the CPU, trained BatchNorm cannot be synchronised
    (SyncBatchNorm needs CUDA), and the point here is the objective."""
    model = tiny_model_with_batchnorm(seed)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, nn.Identity())
    return model


def pairs(n: int = 16, labelled: frozenset[int] = frozenset({0, 2, 3, 7, 9, 12})) -> list[Sample]:
    """``n`` pairs of flat colours and pure tones, some with a one-cell ground truth (4x4 grid)."""
    return tone_pairs(n, labelled)


class Corrupt(torch.utils.data.Dataset):
    """:func:`pairs` where pairs 5 and 11 raise as a corrupt file would: with
    ``skip_unreadable`` some global batches lose a pair, and the ranks' local batches differ
    (with seed 4 they never leave a rank empty, where several processes skip the step)."""

    def __init__(self) -> None:
        self.samples = pairs()
        self.ids = [s.id for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        if i in (5, 11):
            raise ValueError(f"audio/s{i}.wav: cannot read audio (truncated)")
        return self.samples[i]


def config(epochs: int = 2) -> TrainConfig:
    # labelled_mean: the annotated pairs are unevenly split between the ranks, the hardest case
    return TrainConfig(scheme="semi_supervised", attention_reduction="labelled_mean", lam=0.5, epochs=epochs,
                       batch_size=4, optimizer="sgd", lr=LR, momentum=MOMENTUM, progress=False, seed=4,
                       skip_unreadable=True)


def frozen_model() -> nn.Module:
    """The tiny model with both streams frozen (their BatchNorm too), for cached sound features."""
    return tiny_model_with_batchnorm(0, freeze_sound=True, freeze_visual=True)


def cached_pairs() -> list[Sample]:
    """:func:`pairs` carrying cached sound features (``extras["sound_feature"]``)."""
    g = torch.Generator().manual_seed(2)
    out = pairs()
    for s in out:
        s.extras["sound_feature"] = torch.randn(8, generator=g)
    return out


def supervised_config() -> TrainConfig:
    # L_S alone leaves the layers that make f_v without gradient (DDP must find them unused)
    return TrainConfig(scheme="supervised", epochs=2, batch_size=4, optimizer="sgd", lr=LR, momentum=MOMENTUM,
                       weight_decay=0.1, progress=False, seed=4)


def worker(out: Path) -> None:
    """One rank: join the world torchrun's variables describe, train, save weights and history."""
    from soundloc.train import init_distributed
    torch.set_num_threads(1)
    rank, size = init_distributed()
    assert size == WORLD
    trainer = Trainer(tiny_model(), config())
    assert trainer.ddp is not None
    history = trainer.fit(Corrupt(), checkpoint=out / "last.pt")
    torch.save({"model": trainer.model.state_dict(), "history": history}, out / f"rank{rank}.pt")
    cached = Trainer(frozen_model(), supervised_config())
    cached.fit(cached_pairs())
    torch.save(cached.model.state_dict(), out / f"cached{rank}.pt")
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def params(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [v.float() for v in state.values()]


def test_sharded_order_is_the_one_process_order() -> None:
    for start in (0, 8):
        one = EpochOrder(18, torch.Generator().manual_seed(5))
        one.start = start
        full = list(one)[: (18 - start) // 4 * 4]
        shards = []
        for rank in range(2):
            s = ShardedEpochOrder(18, torch.Generator().manual_seed(5), rank, 2, 4)
            s.start = start
            shards.append(list(s))
            assert len(s) == len(shards[-1])
        glued = [i for k in range(len(shards[0]) // 2) for r in range(2) for i in shards[r][2 * k: 2 * k + 2]]
        assert glued == full


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:skipped pair")
def test_two_processes_equal_one_process(tmp_path: Path) -> None:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(WORLD),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, str(tmp_path)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(WORLD)]
    logs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # (a) both ranks hold the same weights and the same history, bit for bit: every rank applies
    # the same all-reduced gradient (gloo hands every rank the same reduced bits), the promise of DDP
    assert all(torch.equal(a, b) for a, b in zip(params(ranks[0]["model"]), params(ranks[1]["model"])))
    def timeless(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]

    assert timeless(ranks[0]["history"]) == timeless(ranks[1]["history"])

    # (b) one process on the same global batches, with the same negatives (up to the order of
    # the float32 sums: see the module docstring for the tolerance)
    one = Trainer(tiny_model(), config())
    history = one.fit(Corrupt())
    assert [r["steps"] for r in history] == [STEPS, STEPS]
    moved = max(float((a - b).abs().max()) for a, b in zip(params(one.model.state_dict()), params(tiny_model().state_dict())))
    assert moved > 100 * atol(2 * STEPS)  # the weights did move: the comparison below can fail
    for a, b in zip(params(one.model.state_dict()), params(ranks[0]["model"])):
        torch.testing.assert_close(a, b, rtol=0.0, atol=atol(2 * STEPS))
    for r1, r2 in zip(history, ranks[0]["history"]):
        assert r1["unreadable_ids"] == r2["unreadable_ids"] and r1["unreadable"] == 2
        assert (r1["pairs"], r1["labelled"], r1["steps"]) == (r2["pairs"], r2["labelled"], r2["steps"])
        # float32 means over the global batch, summed in another order, from weights within
        # the tolerance above: equal to ~1e-6 of their size, 1e-5 allowed
        for key in ("loss", "l_u", "l_s"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-5)
            for a, b in zip(r1["step"][key], r2["step"][key], strict=True):  # None: no annotated pair
                assert (a is None and b is None) or b == pytest.approx(a, rel=1e-5)

    # the supervised scheme on cached sound features, the other path through DDP
    cached = [torch.load(tmp_path / f"cached{r}.pt", weights_only=True) for r in range(WORLD)]
    assert all(torch.equal(a, b) for a, b in zip(params(cached[0]), params(cached[1])))
    reference = Trainer(frozen_model(), supervised_config())
    reference.fit(cached_pairs())
    for a, b in zip(params(reference.model.state_dict()), params(cached[0])):  # 6 labelled pairs: 1 step an epoch
        torch.testing.assert_close(a, b, rtol=0.0, atol=atol(2))

    # (c) rank 0's checkpoint resumes in one process as the one-process run continues
    save_checkpoint(tmp_path / "one.pt", one)
    resumed = []
    for path in (tmp_path / "last.pt", tmp_path / "one.pt"):  # resume_trainer, on the BatchNorm-free model
        trainer = Trainer(tiny_model(seed=9), config(epochs=3))
        trainer.load_state_dict(read_checkpoint(path))
        trainer.fit(Corrupt())
        resumed.append(trainer)
    assert resumed[0].epoch == 3 and len(resumed[0].history) == 3
    for a, b in zip(params(resumed[0].model.state_dict()), params(resumed[1].model.state_dict())):
        torch.testing.assert_close(a, b, rtol=0.0, atol=atol(3 * STEPS))


def test_trainable_batchnorm_is_refused_on_cpu_with_several_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    import soundloc.train.distributed as distributed
    import soundloc.train.loop as loop
    for module in (distributed, loop):
        monkeypatch.setattr(module, "distributed_world", lambda: (0, 2))
    model = tiny_model_with_batchnorm()
    with pytest.raises(ValueError, match="BatchNorm"):
        Trainer(model, TrainConfig(batch_size=4, progress=False, device="cpu"))
    with pytest.raises(ValueError, match="divisible"):
        Trainer(tiny_model(), TrainConfig(batch_size=5, progress=False, device="cpu"))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
