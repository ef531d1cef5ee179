"""Pretrain the pigeon experiment's SmallCNN as an object classifier ("SynthNet", the world's ImageNet).

Images: scenes of a SyntheticWorld with a DIFFERENT seed (1000 + seed) than the pigeon run's world,
with the band made uninformative (context_p = 1/K) and only on-screen objects (offscreen_p =
ambient_p = 0), so the only class evidence in the image is the sounding object's shape (like
ImageNet: image-level labels only; no boxes, no sounds). Label = the sounding object's class.
Model: SmallCNN (ModelConfig.cpu(temperature=0.1) visual stream: width 32, dim 128, stride 8)
+ global average pool + linear head, cross-entropy.

Usage: python pretrain.py SEED OUT.pt [--epochs 5]

Adam lr 1e-3 with a cosine decay over the epochs, per-image horizontal flips, and a final
BatchNorm recalibration pass (cumulative running statistics over the training images).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from soundloc.data.synthetic import SyntheticWorld, WorldConfig
from soundloc.models import ModelConfig, SmallCNN
import os
CONTEXT_P = float(os.environ.get("CONTEXT_P", "0.25"))


def make_set(seed: int, n: int, start: int = 0):
    cfg = WorldConfig(clip_seconds=0.05, context_p=CONTEXT_P, offscreen_p=0.0, ambient_p=0.0)  # K = 4
    world = SyntheticWorld(cfg, seed=seed)
    xs, ys = [], []
    for i in range(start, start + n):
        s = world.scene(i)
        assert s.kind == "object"
        xs.append(s.image)
        ys.append(s.label)
    return torch.stack(xs), torch.tensor(ys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("seed", type=int)
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n_train", type=int, default=8000)
    ap.add_argument("--n_test", type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    pseed = 1000 + a.seed
    xtr, ytr = make_set(pseed, a.n_train, 0)
    xte, yte = make_set(pseed, a.n_test, a.n_train)
    t_gen = time.perf_counter() - t0
    print(f"generated {len(xtr)}+{len(xte)} images in {t_gen:.1f}s; class counts {np.bincount(ytr.numpy())}", flush=True)

    mc = ModelConfig.cpu(temperature=0.1)
    cnn = SmallCNN(width=mc.visual_width, out_channels=mc.visual_dim, stride=mc.visual_stride, normalize=mc.normalize_image)
    head = nn.Linear(mc.visual_dim, 4)
    params = list(cnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    bs = 64
    steps_total = a.epochs * (len(xtr) // bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + np.cos(np.pi * min(k, steps_total) / steps_total)))

    def logits(x):
        return head(cnn(x).mean((2, 3)))

    def accuracy(x, y):
        cnn.eval()
        with torch.no_grad():
            pred = torch.cat([logits(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
        cnn.train()
        return float((pred == y).float().mean())

    t1 = time.perf_counter()
    step, epoch = 0, 0
    gen = torch.Generator().manual_seed(a.seed)
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(len(xtr), generator=gen)
        tot = 0.0
        for i in range(0, len(perm) - bs + 1, bs):
            idx = perm[i:i + bs]
            x = xtr[idx]
            flip = torch.rand(len(x), generator=gen) < 0.5  # horizontal flips (the shapes are mirror-symmetric)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = nn.functional.cross_entropy(logits(x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
            step += 1
        print(f"epoch {epoch} step {step} loss {tot / max(1, i // bs + 1):.3f} test acc {accuracy(xte, yte):.3f} "
              f"({time.perf_counter() - t1:.0f}s)", flush=True)
    # BatchNorm recalibration: cumulative running statistics over the training images
    for mod in cnn.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    cnn.train()
    with torch.no_grad():
        for i in range(0, len(xtr), 256):
            cnn(xtr[i:i + 256])
    for mod in cnn.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = 0.1
    t_train = time.perf_counter() - t1
    acc_te, acc_tr = accuracy(xte, yte), accuracy(xtr[:1000], ytr[:1000])
    torch.save(cnn.state_dict(), a.out)
    info = {"seed": a.seed, "pretrain_world_seed": pseed, "n_train": len(xtr), "n_test": len(xte),
            "steps": step, "epochs": epoch, "gen_seconds": t_gen, "train_seconds": t_train,
            "test_acc": acc_te, "train_acc_first1000": acc_tr}
    print(json.dumps(info))
    with open(a.out + ".json", "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
