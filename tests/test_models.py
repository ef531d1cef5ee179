"""Tests of soundloc.models: shapes, the SoundNet minimum length, the attention module against a
second implementation written here, freezing, gradients, checkpoints and input validation."""
from __future__ import annotations

import dataclasses
import math
import urllib.error
from pathlib import Path

import pytest
import torch

from soundloc.models import (
    LocalizationModule,
    ModelConfig,
    SmallCNN,
    SoundLocalizer,
    SoundNet8,
    VGG16Features,
    build_model,
    load_model,
    min_samples_for,
    output_steps_for,
    pad_waveform,
    save_model,
)
from soundloc.losses import semi_supervised_loss, shuffle_negatives

# ------------------------------------------------------------------------- helpers (independent)

# (kernel, stride, padding) of every layer in order, written out from the SoundNet paper's table.
_SOUNDNET8_LAYERS = [
    (64, 2, 32), (8, 8, 0),          # conv1, pool1
    (32, 2, 16), (8, 8, 0),          # conv2, pool2
    (16, 2, 8), (8, 2, 4), (4, 2, 2), (4, 4, 0),  # conv3, conv4, conv5, pool5
    (4, 2, 2), (4, 2, 2),            # conv6, conv7
    (8, 2, 0),                       # conv8
]
_SHORT_LAYERS = [
    (64, 2, 32), (4, 4, 0), (32, 2, 16), (4, 4, 0), (16, 2, 8), (8, 2, 4), (4, 2, 2), (2, 2, 0),
    (4, 2, 2), (4, 2, 2), (4, 1, 0),
]


def _steps_forward(length: int, layers: list[tuple[int, int, int]]) -> int:
    """Output length by applying floor((L + 2p - k) / s) + 1 layer after layer."""
    for k, s, p in layers:
        if length + 2 * p < k:
            return 0
        length = (length + 2 * p - k) // s + 1
    return length


def _min_by_search(layers: list[tuple[int, int, int]]) -> int:
    lo, hi = 1, 10**7  # smallest length with >= 1 output step, by bisection (monotone in L)
    while lo < hi:
        mid = (lo + hi) // 2
        if _steps_forward(mid, layers) >= 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _tiny_cfg(**kw: object) -> ModelConfig:
    base = dict(visual_width=8, visual_dim=16, sound_width=0.0625, sound_dim=12, sound_hidden=10,
                visual_hidden=9, image_size=32)
    base.update(kw)
    return ModelConfig.cpu(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- SoundNet


def test_soundnet_min_samples_independent() -> None:
    expected = _min_by_search(_SOUNDNET8_LAYERS)
    assert expected == 209_374  # the figure in the paper notes (9.5 s at 22,050 Hz)
    assert min_samples_for("soundnet8") == expected
    assert SoundNet8(width=0.0625).min_samples == expected
    assert min_samples_for("short") == _min_by_search(_SHORT_LAYERS) == 9_326
    for n in (209_373, 209_374, 441_000, 22_050 * 30):
        assert output_steps_for(n) == _steps_forward(n, _SOUNDNET8_LAYERS)
    assert output_steps_for(441_000) == 4  # 20 s gives 4 conv8 steps
    assert output_steps_for(22_050, "short") == _steps_forward(22_050, _SHORT_LAYERS) == 4


def test_soundnet8_full_width_at_minimum_length() -> None:
    net = SoundNet8().eval()
    n = net.min_samples
    with torch.no_grad():
        objects, scenes = net(torch.randn(1, n), return_scenes=True)
        obj_maps, scene_maps = net.forward_maps(torch.randn(1, 1, n))
    assert objects.shape == (1, 1000) and scenes.shape == (1, 401)
    assert obj_maps.shape == (1, 1000, 1) and scene_maps.shape == (1, 401, 1)
    with pytest.raises(ValueError, match=r"waveform.*209374"):
        net(torch.randn(1, n - 1))


def test_soundnet_length_invariance_and_time_average() -> None:
    torch.manual_seed(0)
    net = SoundNet8(width=0.0625, variant="short", objects_dim=32).eval()
    with torch.no_grad():
        for t in (net.min_samples, 22_050, 50_000):
            x = torch.randn(2, t)
            feat = net(x)
            assert feat.shape == (2, 32)
            maps, _ = net.forward_maps(x)
            assert maps.shape[-1] == output_steps_for(t, "short")
            assert torch.allclose(feat, maps.mean(-1), atol=1e-6)
        # [B, T] and [B, 1, T] are the same input
        x = torch.randn(2, 22_050)
        assert torch.allclose(net(x), net(x.unsqueeze(1)))
        # A periodic signal whose period (4096) is the variant's total stride gives identical
        # conv8 steps away from the zero-padded edges, whatever the clip length.
        period = torch.randn(1, 4096)
        m30, _ = net.forward_maps(period.repeat(1, 30))
        m40, _ = net.forward_maps(period.repeat(1, 40))
        assert m30.shape[-1] == output_steps_for(30 * 4096, "short") == 28
        ref = m30[..., 14:15]
        assert torch.allclose(m30[..., 3:-3], ref.expand(-1, -1, 22), atol=1e-5)
        assert torch.allclose(m40[..., 3:-3], ref.expand(-1, -1, m40.shape[-1] - 6), atol=1e-5)
        assert not torch.allclose(m30[..., 0], ref[..., 0], atol=1e-5)  # the edges do differ


def test_soundnet_width_and_heads() -> None:
    net = SoundNet8(width=0.5, objects_dim=7, scenes_dim=5)
    assert net.conv1[0].out_channels == 8 and net.conv7[0].out_channels == 512
    assert net.conv8_objects.out_channels == 7 and net.conv8_scenes.out_channels == 5
    assert net.conv8_objects.kernel_size == (8,) and net.conv8_objects.stride == (2,)
    assert net.conv8_objects.padding == (0,)


def test_soundnet_input_validation() -> None:
    net = SoundNet8(width=0.0625, variant="short")
    with pytest.raises(TypeError, match="waveform"):
        net(torch.zeros(1, 20_000, dtype=torch.int16))
    with pytest.raises(ValueError, match="waveform"):
        net(torch.zeros(1, 2, 20_000))  # stereo
    with pytest.raises(ValueError, match="waveform"):
        net(torch.zeros(20_000))
    with pytest.raises(TypeError, match="waveform"):
        net([0.0] * 20_000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="variant"):
        SoundNet8(variant="long")  # type: ignore[arg-type]


def test_pad_waveform() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert pad_waveform(x, 7).tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]
    assert pad_waveform(x, 5, mode="zeros").tolist() == [[1.0, 2.0, 3.0, 0.0, 0.0]]
    assert pad_waveform(x, 2) is x
    assert pad_waveform(x.unsqueeze(1), 4).shape == (1, 1, 4)
    with pytest.raises(ValueError, match="mode"):
        pad_waveform(x, 5, mode="reflect")  # type: ignore[arg-type]


def test_soundnet_weights_path(tmp_path: Path) -> None:
    src = SoundNet8(width=0.0625, variant="short", objects_dim=6)
    path = tmp_path / "soundnet.pt"
    torch.save(src.state_dict(), path)
    dst = SoundNet8(width=0.0625, variant="short", objects_dim=6, weights_path=path)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k])
    with pytest.raises(ValueError, match="do not match"):
        SoundNet8(width=0.125, variant="short", objects_dim=6, weights_path=path)
    with pytest.raises(FileNotFoundError, match="weights_path"):
        SoundNet8(weights_path=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="bad.pt"):
        SoundNet8(width=0.0625, weights_path=bad)


# ---------------------------------------------------------------------------------- visual


def test_vgg16_features_shapes() -> None:
    vgg = VGG16Features().eval()
    assert len(vgg.features) == 30 and isinstance(vgg.features[29], torch.nn.ReLU)
    with torch.no_grad():
        assert vgg(torch.rand(1, 3, 224, 224)).shape == (1, 512, 14, 14)
        assert vgg(torch.rand(1, 3, 48, 80)).shape == (1, 512, 3, 5)
        assert (vgg(torch.rand(1, 3, 40, 40)) >= 0).all()  # conv5_3 + ReLU


def test_vgg16_pretrained_offline_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(RuntimeError, match="pretrained=False") as info:
        VGG16Features(pretrained=True)
    assert "internet" in str(info.value) and "vgg16-397923af.pth" in str(info.value)


def test_vgg16_pretrained_loads_torchvision_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake torchvision checkpoint: torchvision's key names, values we recognise.
    ref = VGG16Features()
    fake = {f"features.{k}": torch.full_like(v, 0.5) for k, v in ref.features.state_dict().items()}
    fake["features.28.bias"] = torch.arange(512, dtype=torch.float32)
    fake["classifier.0.weight"] = torch.zeros(3, 3)  # classifier keys are ignored
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: fake)
    vgg = VGG16Features(pretrained=True, freeze=True)
    assert torch.equal(vgg.features[0].weight, torch.full((64, 3, 3, 3), 0.5))
    assert torch.equal(vgg.features[28].bias, torch.arange(512, dtype=torch.float32))
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training  # a frozen backbone stays in eval mode


@pytest.mark.parametrize("stride,size,grid", [(16, 64, 4), (8, 64, 8), (16, 100, 6), (8, 36, 4)])
def test_small_cnn_shapes(stride: int, size: int, grid: int) -> None:
    net = SmallCNN(width=4, out_channels=10, stride=stride)
    out = net(torch.rand(2, 3, size, size))
    assert out.shape == (2, 10, grid, grid)
    assert net.stride == stride and net.out_channels == 10


def test_image_validation_names_argument() -> None:
    net = SmallCNN(width=4, out_channels=8, stride=16)
    with pytest.raises(TypeError, match="image"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="image"):
        net(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="image"):
        net(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="image.*stride 16"):
        net(torch.zeros(1, 3, 8, 32))


# ------------------------------------------------------------------------------ attention


def _reference_attention(mod: LocalizationModule, v: torch.Tensor, s: torch.Tensor, relu: bool, tau: float):
    """Second implementation, cell by cell, from the slide equations and the module's weights."""
    b, d, gh, gw = v.shape
    fc1w, fc1b = mod.sound_fc1.weight, mod.sound_fc1.bias
    fc2w, fc2b = mod.sound_fc2.weight, mod.sound_fc2.bias
    out_att, out_fv = [], []
    for n in range(b):
        h = fc2w @ torch.clamp(fc1w @ s[n] + fc1b, min=0) + fc2b
        h = h / math.sqrt(float((h * h).sum()))
        cells = [v[n, :, i, j] for i in range(gh) for j in range(gw)]
        a = []
        for c in cells:
            cos = float((c * h).sum()) / math.sqrt(float((c * c).sum()))
            a.append(max(cos, 0.0) if relu else cos)
        e = [math.exp(x / tau) for x in a]
        alpha = [x / sum(e) for x in e]
        z = sum(al * c for al, c in zip(alpha, cells))
        hid = torch.clamp(mod.visual_fc1.weight @ torch.clamp(z, min=0) + mod.visual_fc1.bias, min=0)
        out_fv.append(mod.visual_fc2.weight @ hid + mod.visual_fc2.bias)
        out_att.append(torch.tensor(alpha, dtype=v.dtype).reshape(gh, gw))
    return torch.stack(out_att), torch.stack(out_fv)


@pytest.mark.parametrize("mechanism,tau", [("cosine", 1.0), ("relu", 1.0), ("cosine", 0.1)])
def test_attention_module_matches_reference(mechanism: str, tau: float) -> None:
    torch.manual_seed(3)
    mod = LocalizationModule(visual_dim=6, sound_dim=5, sound_hidden=7, visual_hidden=4,
                             mechanism=mechanism, temperature=tau).double()  # type: ignore[arg-type]
    v = torch.randn(2, 6, 3, 2, dtype=torch.float64)
    s = torch.randn(2, 5, dtype=torch.float64)
    with torch.no_grad():
        out = mod(v, s)
        att, f_v = _reference_attention(mod, v, s, mechanism == "relu", tau)
        assert torch.allclose(out.attention, att, atol=1e-10)
        assert torch.allclose(out.f_v, f_v, atol=1e-10)
        assert torch.allclose(out.logits, out.scores / tau)
        assert torch.allclose(out.attention.sum((1, 2)), torch.ones(2, dtype=torch.float64))
        assert (out.attention >= 0).all()


def test_cosine_and_relu_differ_only_where_cosine_is_negative() -> None:
    torch.manual_seed(4)
    cos_mod = LocalizationModule(visual_dim=3, sound_dim=4, sound_hidden=5, visual_hidden=3, mechanism="cosine")
    relu_mod = LocalizationModule(visual_dim=3, sound_dim=4, sound_hidden=5, visual_hidden=3, mechanism="relu")
    relu_mod.load_state_dict(cos_mod.state_dict())
    s = torch.randn(1, 4)
    with torch.no_grad():
        h = cos_mod.sound_query(s)[0]
        ortho = torch.linalg.svd(h[None])[2][1]  # a unit vector orthogonal to h
        # cells: along h (cos 1), against h (cos -1), orthogonal (cos 0), 2h - ortho (cos 2/sqrt5)
        cells = torch.stack([3 * h, -2 * h, ortho, 2 * h - ortho], dim=1).reshape(1, 3, 2, 2)
        c, r = cos_mod(cells, s), relu_mod(cells, s)
    expected_cos = torch.tensor([1.0, -1.0, 0.0, 2 / math.sqrt(5)])
    assert torch.allclose(c.scores.flatten(), expected_cos, atol=1e-5)
    assert torch.allclose(r.scores.flatten(), expected_cos.clamp(min=0), atol=1e-5)
    e_cos = torch.exp(expected_cos)
    assert torch.allclose(c.attention.flatten(), e_cos / e_cos.sum(), atol=1e-5)
    e_relu = torch.exp(expected_cos.clamp(min=0))
    assert torch.allclose(r.attention.flatten(), e_relu / e_relu.sum(), atol=1e-5)
    assert not torch.allclose(c.attention, r.attention, atol=1e-3)
    # z uses the unnormalised cells: the attended vector of the cosine variant
    assert torch.allclose(c.z[0], (cells[0].reshape(3, 4) * c.attention.flatten()).sum(1), atol=1e-6)


def test_attention_module_validation() -> None:
    mod = LocalizationModule(visual_dim=4, sound_dim=3, sound_hidden=5, visual_hidden=5)
    with pytest.raises(ValueError, match="visual_features"):
        mod(torch.randn(1, 5, 2, 2), torch.randn(1, 3))
    with pytest.raises(ValueError, match="sound_feature"):
        mod(torch.randn(1, 4, 2, 2), torch.randn(1, 4))
    with pytest.raises(ValueError, match="batch"):
        mod(torch.randn(2, 4, 2, 2), torch.randn(1, 3))
    with pytest.raises(ValueError, match="mechanism"):
        LocalizationModule(mechanism="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        LocalizationModule(temperature=0.0)


# ---------------------------------------------------------------------------- full model


def test_paper_model_shapes_320() -> None:
    cfg = ModelConfig.paper(pretrained=False, freeze_sound=False)
    model = build_model(cfg).eval()
    n = model.min_samples
    with torch.no_grad():
        out = model(torch.rand(1, 3, 320, 320), torch.randn(1, n) * 0.1)
    assert out.attention.shape == (1, 20, 20) and out.logits.shape == (1, 20, 20)
    assert out.f_v.shape == (1, 1000) and out.f_s.shape == (1, 1000) and out.z.shape == (1, 512)
    assert out.attention.sum().item() == pytest.approx(1.0, abs=1e-5)
    # VGG16 conv layers + SoundNet-8 + the four FC layers of the localization module
    n_vgg = sum(p.numel() for p in model.visual.parameters())
    assert n_vgg == 14_714_688  # torchvision's vgg16().features[:30] parameter count
    n_att = sum(p.numel() for p in model.attention.parameters())
    assert n_att == (1000 * 1000 + 1000) + (1000 * 512 + 512) + (512 * 512 + 512) + (512 * 1000 + 1000)


def test_cpu_model_forward_and_output_contract() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig.cpu())
    out = model(torch.rand(3, 3, 64, 64), torch.randn(3, 22_050))
    assert out.attention.shape == (3, 8, 8)
    assert out.f_v.shape == out.f_s.shape == (3, 128)
    assert (out.attention >= 0).all()
    assert torch.allclose(out.attention.sum((1, 2)), torch.ones(3), atol=1e-6)
    assert torch.allclose(out.attention, torch.softmax(out.logits.flatten(1), 1).reshape(3, 8, 8))
    # forward == encode_image / encode_sound / localize
    model.eval()
    img, wav = torch.rand(2, 3, 64, 64), torch.randn(2, 22_050)
    with torch.no_grad():
        a = model(img, wav)
        b = model.localize(model.encode_image(img), model.encode_sound(wav))
    assert torch.allclose(a.attention, b.attention) and torch.allclose(a.f_v, b.f_v)
    assert torch.equal(b.f_s, model.encode_sound(wav).detach())
    with torch.no_grad():  # float64 inputs are cast to the model's dtype
        c = model(img.double(), wav.double())
    assert c.attention.dtype == torch.float32 and torch.allclose(c.attention, a.attention)


def test_score_sounds_matches_batched_forward() -> None:
    torch.manual_seed(1)
    model = build_model(_tiny_cfg()).eval()
    img, wavs = torch.rand(3, 32, 32), torch.randn(4, 12_000)
    with torch.no_grad():
        maps = model.score_sounds(img, wavs)
        ref = model(img.unsqueeze(0).expand(4, -1, -1, -1), wavs).attention
    assert maps.shape == (4, 4, 4)
    # shared visual features against a batch of 4 images: the same sums in other blockings (~1e-6
    # of the scores); at temperature 1 a cell's mass (~1/16) moves by ~1e-7 (atol 1e-6)
    assert torch.allclose(maps, ref, atol=1e-6)
    assert not torch.allclose(maps[0], maps[1])  # different sounds, different maps
    with pytest.raises(ValueError, match="image"):
        model.score_sounds(torch.rand(2, 3, 32, 32), wavs)


def test_model_input_validation() -> None:
    model = build_model(_tiny_cfg())
    img, wav = torch.rand(2, 3, 32, 32), torch.randn(2, 12_000)
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(img, wav[:1])
    with pytest.raises(TypeError, match="image"):
        model(img.double().long(), wav)
    with pytest.raises(ValueError, match="image"):
        model(torch.rand(2, 3, 4, 4), wav)
    with pytest.raises(TypeError, match="waveform"):
        model(img, (wav * 100).long())
    with pytest.raises(ValueError, match=r"waveform.*9326"):
        model(img, wav[:, :5000])


def test_short_clip_padding_config() -> None:
    torch.manual_seed(2)
    model = build_model(_tiny_cfg(short_clip_padding="repeat")).eval()
    wav = torch.randn(2, 3000)
    with torch.no_grad():
        got = model.encode_sound(wav)
        ref = model.sound(pad_waveform(wav, model.min_samples, "repeat"))
    assert torch.allclose(got, ref)


def test_gradients_reach_both_streams() -> None:
    torch.manual_seed(0)
    model = build_model(_tiny_cfg())
    out = model(torch.rand(4, 3, 32, 32), torch.randn(4, 12_000))
    gt = torch.zeros(4, 4, 4)
    gt[:2, 1:3, 1:3] = 1
    loss = semi_supervised_loss(out.f_v, out.f_s, shuffle_negatives(out.f_s, torch.Generator().manual_seed(0)),
                                out.logits, gt, torch.tensor([True, True, False, False]))
    loss.total.backward()
    assert model.visual.features[0].weight.grad.abs().sum() > 0
    assert model.sound.conv1[0].weight.grad.abs().sum() > 0
    assert model.attention.sound_fc1.weight.grad.abs().sum() > 0
    assert model.attention.visual_fc2.weight.grad.abs().sum() > 0


def test_frozen_streams_get_no_gradient() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.paper(pretrained=False, sound_variant="short", sound_width=0.0625, sound_dim=16,
                            sound_hidden=8, visual_hidden=8, waveform_scale=1.0)
    model = build_model(cfg)
    model.train()
    assert not model.sound.training and not model.visual.training and model.attention.training
    out = model(torch.rand(2, 3, 32, 32), torch.randn(2, 10_000))
    loss = semi_supervised_loss(out.f_v, out.f_s, out.f_s.flip(0), out.logits, torch.ones(2, 2, 2),
                                torch.tensor([True, False]))
    loss.total.backward()
    assert all(p.grad is None for p in model.visual.parameters())
    assert all(p.grad is None for p in model.sound.parameters())
    assert model.attention.sound_fc1.weight.grad.abs().sum() > 0
    assert model.attention.visual_fc1.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------- config & saving


def test_config_presets_round_trip_and_validation() -> None:
    for cfg in (ModelConfig(), ModelConfig.paper(), ModelConfig.cpu(), _tiny_cfg(mechanism="relu")):
        d = dataclasses.asdict(cfg)
        assert ModelConfig(**d) == cfg
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    paper = ModelConfig.paper()
    assert (paper.visual_backbone, paper.pretrained, paper.freeze_visual, paper.image_size) == ("vgg16", True, True, 320)
    assert (paper.sound_variant, paper.sound_dim, paper.temperature) == ("soundnet8", 1000, 1.0)
    assert ModelConfig.cpu(temperature=0.1).temperature == 0.1
    with pytest.raises(ValueError, match="mechanism"):
        ModelConfig(mechanism="sigmoid")
    with pytest.raises(ValueError, match="visual_stride"):
        ModelConfig.cpu(visual_stride=2)
    with pytest.raises(ValueError, match="vgg16"):
        ModelConfig(visual_dim=256)
    with pytest.raises(ValueError, match="temperature"):
        ModelConfig(temperature=0)
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({"color": "red"})


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(_tiny_cfg(mechanism="relu", temperature=0.5))
    model(torch.rand(4, 3, 32, 32), torch.randn(4, 12_000))  # move BatchNorm running stats
    path = tmp_path / "sub" / "model.pt"
    save_model(path, model, extra={"epoch": 3, "history": [0.5, 0.25]})
    assert path.exists() and not list(path.parent.glob("*.part*"))
    loaded = load_model(path)
    assert loaded.config == model.config
    model.eval()
    loaded.eval()
    img, wav = torch.rand(2, 3, 32, 32), torch.randn(2, 12_000)
    with torch.no_grad():
        a, b = model(img, wav), loaded(img, wav)
    assert torch.equal(a.attention, b.attention) and torch.equal(a.f_v, b.f_v)
    payload = torch.load(path, weights_only=True)
    assert payload["extra"] == {"epoch": 3, "history": [0.5, 0.25]}


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not a soundloc checkpoint"):
        load_model(other)


def test_load_pretrained_checkpoint_does_not_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ModelConfig.paper(pretrained=False, sound_variant="short", sound_width=0.0625, sound_dim=8,
                            sound_hidden=8, visual_hidden=8)
    model = SoundLocalizer(cfg)
    model.config = dataclasses.replace(cfg, pretrained=True)  # as if built online
    path = tmp_path / "paper.pt"
    save_model(path, model)

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    loaded = load_model(path)
    assert loaded.config.pretrained is True
    assert torch.equal(loaded.visual.features[0].weight, model.visual.features[0].weight)
