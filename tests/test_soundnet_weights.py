"""The SoundNet-8 converter on files the tests write in the releases' formats: the TensorFlow
port's pickled ``sound8.npy`` (weights ``[k, 1, in, out]``) and a Torch7 network as torchfile
returns it (``SpatialConvolution`` weights ``[out, in, k, 1]``, bytes keys)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from soundloc.cli import main
from soundloc.models import SoundNet8
from soundloc.models.soundnet_weights import LAYERS, convert_soundnet, layers_from_torch7, state_from_layers

ROOT = Path(__file__).resolve().parents[1]
KW = dict(width=0.0625, variant="soundnet8", objects_dim=10, scenes_dim=4)  # small, faithful layer shapes


def source_net() -> SoundNet8:
    """A SoundNet8 with random weights and batch-norm statistics (the "release")."""
    torch.manual_seed(0)
    net = SoundNet8(**KW)
    g = torch.Generator().manual_seed(1)
    for i in range(1, 8):
        bn = getattr(net, f"conv{i}")[1]
        n = bn.num_features
        bn.weight.data = torch.rand(n, generator=g) + 0.5
        bn.bias.data = torch.randn(n, generator=g)
        bn.running_mean = torch.randn(n, generator=g)
        bn.running_var = torch.rand(n, generator=g) + 0.5
    return net.eval()


def t7_weight(conv: torch.nn.Conv1d) -> np.ndarray:
    """Torch7's SpatialConvolution layout over a [1, T, 1] input: [out, in, k, 1]."""
    return conv.weight.detach().numpy()[:, :, :, None]


def release_layers(net: SoundNet8) -> dict[str, dict[str, np.ndarray]]:
    """The TensorFlow port's arrays: Torch7's weights transposed by (2, 3, 1, 0)."""
    layers = {}
    for i, name in enumerate(LAYERS):
        conv = getattr(net, f"conv{i + 1}")[0] if i < 7 else (net.conv8_objects if name == "conv8" else net.conv8_scenes)
        layer = {"weights": t7_weight(conv).transpose(2, 3, 1, 0), "biases": conv.bias.detach().numpy()}
        if i < 7:
            bn = getattr(net, f"conv{i + 1}")[1]
            layer.update(gamma=bn.weight.detach().numpy(), beta=bn.bias.detach().numpy(),
                         mean=bn.running_mean.numpy(), var=bn.running_var.numpy())
        layers[name] = layer
    return layers


def test_tf_npy_converts_to_the_same_network(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = source_net()
    np.save(tmp_path / "sound8.npy", release_layers(src), allow_pickle=True)  # a pickled dict, as released
    out = tmp_path / "soundnet8.pt"
    script = ROOT / "data_scripts" / "convert_soundnet.py"
    proc = subprocess.run([sys.executable, str(script), "--weights", str(tmp_path / "sound8.npy"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "scaled by 256" in proc.stdout
    saved = torch.load(out, weights_only=True)
    assert saved["input_scale"] == 256.0 and saved["source"] == "sound8.npy"

    net = SoundNet8(**KW, input_scale=256.0, weights_path=out).eval()
    ref = src.state_dict()
    assert set(net.state_dict()) == set(ref)
    assert all(torch.equal(net.state_dict()[k], ref[k]) for k in ref)
    # conv1 by hand from the release's arrays (cross-correlation, stride 2, padding 32): no flip, no transpose slip
    w, b = release_layers(src)["conv1"]["weights"][:, 0, 0, :], release_layers(src)["conv1"]["biases"]  # [64, 16]
    x = np.random.default_rng(0).standard_normal(400).astype(np.float32)
    xp = np.pad(x, 32)
    by_hand = np.stack([xp[2 * t: 2 * t + 64] @ w for t in range((400 + 64 - 64) // 2 + 1)], axis=1) + b[:, None]
    with torch.no_grad():
        ours = net.conv1[0](torch.from_numpy(x)[None, None])[0].numpy()
    np.testing.assert_allclose(ours, by_hand, rtol=1e-4, atol=1e-4)
    # the release expects waveforms times 256: the converted network applies it
    wave = 0.01 * torch.randn(1, net.min_samples, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(net(wave), src(256.0 * wave), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="scaled by 256"):
        SoundNet8(**KW, input_scale=1.0, weights_path=out)


class T7:
    """What torchfile returns for a Torch7 module: ``_typename`` and bytes keys."""

    def __init__(self, typename: str, **fields: object) -> None:
        self._typename = typename.encode()
        self._obj = {k.encode(): v for k, v in fields.items()}

    def __getitem__(self, key: bytes) -> object:
        return self._obj[key]


def test_torch7_network_converts_to_the_same_network() -> None:
    src = source_net()
    modules: list[T7] = []
    for i in range(1, 8):
        conv, bn, _ = getattr(src, f"conv{i}")  # Conv1d, BatchNorm1d, ReLU
        modules += [T7("nn.SpatialConvolution", weight=t7_weight(conv), bias=conv.bias.detach().numpy()),
                    T7("nn.SpatialBatchNormalization", weight=bn.weight.detach().numpy(), bias=bn.bias.detach().numpy(),
                       running_mean=bn.running_mean.numpy(), running_var=bn.running_var.numpy()),
                    T7("nn.ReLU")]
    heads = T7("nn.ConcatTable", modules=[  # the scene head first: heads are told apart by their sizes
        T7("nn.SpatialConvolution", weight=t7_weight(src.conv8_scenes), bias=src.conv8_scenes.bias.detach().numpy()),
        T7("nn.SpatialConvolution", weight=t7_weight(src.conv8_objects), bias=src.conv8_objects.bias.detach().numpy())])
    net = T7("nn.Sequential", modules=[*modules, heads])
    state = state_from_layers(layers_from_torch7(net))
    ref = src.state_dict()
    assert set(state) == set(ref) and all(torch.equal(state[k], ref[k]) for k in ref)


def test_bad_release_files(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    layers = release_layers(source_net())
    del layers["conv5"]
    np.save(tmp_path / "cut.npy", layers, allow_pickle=True)
    assert main(["data", "soundnet", "--weights", str(tmp_path / "cut.npy"), "--out", str(tmp_path / "o.pt")]) == 2
    assert "lack layer(s) ['conv5']" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
    with pytest.raises(ValueError, match="expected soundnet8_final.t7"):
        convert_soundnet(tmp_path / "weights.h5")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npy: cannot read"):
        convert_soundnet(tmp_path / "junk.npy")
