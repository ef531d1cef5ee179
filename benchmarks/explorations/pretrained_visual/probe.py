"""Linear probes on frozen SmallCNN features of the pigeon world's test scenes (seed's world):
object class from features pooled over the object's box, band class from features pooled over
the band outside the box. Compares pretrained weights with a random-init SmallCNN."""
import sys

import torch
from torch import nn
from soundloc.data.synthetic import SyntheticWorld, WorldConfig
from soundloc.models import SmallCNN
torch.set_num_threads(2)
seed = int(sys.argv[1]); paths = sys.argv[2:]
world = SyntheticWorld(WorldConfig(clip_seconds=0.05), seed=seed)
sc = [world.scene(i) for i in range(3000)]
sc = [s for s in sc if s.kind == "object"]
X = torch.stack([s.image for s in sc]); om = torch.stack([s.object_mask for s in sc]); cm = torch.stack([s.context_mask for s in sc])
yo = torch.tensor([s.label for s in sc]); yc = torch.tensor([s.context_label for s in sc])
def pooled(cnn, mask):
    with torch.no_grad():
        f = torch.cat([cnn(X[i:i+256]) for i in range(0, len(X), 256)])
    w = nn.functional.adaptive_avg_pool2d(mask[:, None], f.shape[-2:])
    return (f * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6)
def probe(F, y):
    F = (F - F.mean(0)) / (F.std(0) + 1e-6); n = len(F) * 2 // 3
    lin = nn.Linear(F.shape[1], 4); opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(300):
        opt.zero_grad(); nn.functional.cross_entropy(lin(F[:n]), y[:n]).backward(); opt.step()
    return float((lin(F[n:]).argmax(1) == y[n:]).float().mean())
for p in ["random-init"] + paths:
    torch.manual_seed(seed); cnn = SmallCNN(width=32, out_channels=128, stride=8)
    if p != "random-init": cnn.load_state_dict(torch.load(p))
    cnn.eval()
    print(f"{p}: object-class probe acc (object box) {probe(pooled(cnn, om), yo):.3f}; "
          f"band-class probe acc (band outside box) {probe(pooled(cnn, cm), yc):.3f}; "
          f"object-class probe from band-only features {probe(pooled(cnn, cm), yo):.3f}")
