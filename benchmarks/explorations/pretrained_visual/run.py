"""Pigeon experiment (smoke scale) with a frozen, object-pretrained SmallCNN visual stream.

Usage: python run.py SEED SYNTHNET.pt OUT_DIR
"""
from __future__ import annotations

import sys

import torch

import soundloc.models
from soundloc.experiments import pigeon
from soundloc.models import SoundLocalizer

seed, weights, out_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(2)
pre = torch.load(weights, map_location="cpu")
built: list[SoundLocalizer] = []
_orig = soundloc.models.build_model


def build_pretrained(cfg, *args, **kwargs):
    assert cfg.freeze_visual and cfg.visual_backbone == "small", cfg
    model = _orig(cfg, *args, **kwargs)
    model.visual.load_state_dict(pre, strict=True)
    assert model.visual.frozen and not any(p.requires_grad for p in model.visual.parameters())
    built.append(model)
    return model


soundloc.models.build_model = build_pretrained
cfg = pigeon.PigeonConfig.at_scale("smoke", model={"temperature": 0.1, "freeze_visual": True}, threads=2)
res = pigeon.run_pigeon(cfg, out_dir=out_dir, seed=seed, progress=False,
                        command=f"benchmarks/explorations/pretrained_visual/run.py {seed} {weights} (frozen SynthNet-pretrained SmallCNN)")
print(pigeon.format_results(res))

# the frozen visual stream must equal the pretrained weights (params and BN running stats) after training
trained = built[1:]  # built[0] is run_pigeon's grid probe
assert len(trained) == 3, len(built)
for scheme, m in zip(pigeon.SCHEMES, trained):
    sd = m.visual.state_dict()
    diff = max(float((sd[k].float() - pre[k].float()).abs().max()) for k in pre)
    n_trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    print(f"{scheme}: max |visual - pretrained| after training = {diff:.3g}; "
          f"visual training mode = {m.visual.training}; trainable params = {n_trainable}")
    assert diff == 0.0
print("timings:", {k: round(v) for k, v in res["timings"].items()})
