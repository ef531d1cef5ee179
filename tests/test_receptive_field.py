"""Receptive fields of the two streams (soundloc.models.sound.receptive_field_for and
soundloc.models.visual.receptive_field), checked against the span of input positions that
actually reach one output: a copy of the network's layer list with all-ones kernels, average
pooling instead of max pooling and no non-linearity, whose gradient is positive exactly on
an output's receptive field."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from soundloc.models import SmallCNN, SoundNet8, VGG16Features
from soundloc.models.sound import min_samples_for, output_steps_for, receptive_field_for
from soundloc.models.visual import receptive_field


def _linear_copy(modules: list[nn.Module], dims: int) -> nn.Sequential:
    """One-channel copy of the convolutions and poolings of ``modules``: all-ones kernels
    (same kernel, stride, padding) and average pooling (same kernel and stride)."""
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    pool = nn.AvgPool1d if dims == 1 else nn.AvgPool2d
    out: list[nn.Module] = []
    for m in modules:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            c = conv(1, 1, m.kernel_size, m.stride, m.padding, bias=False)
            nn.init.ones_(c.weight)
            out.append(c)
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            out.append(pool(m.kernel_size, m.stride))
    return nn.Sequential(*out)


def _support_1d(net: nn.Sequential, length: int) -> tuple[int, int]:
    """Width of the input span reaching the middle output step, and the hop between two
    neighbouring steps' spans."""
    x = torch.zeros(1, 1, length, dtype=torch.float64, requires_grad=True)
    y = net.double()(x)
    mid = y.shape[-1] // 2
    spans = []
    for t in (mid, mid + 1):
        (g,) = torch.autograd.grad(y[0, 0, t], x, retain_graph=True)
        nz = torch.nonzero(g[0, 0]).flatten()
        spans.append((int(nz[0]), int(nz[-1])))
    return spans[0][1] - spans[0][0] + 1, spans[1][0] - spans[0][0]


def _sound_layers(net: SoundNet8) -> list[nn.Module]:
    return [m for name, m in net.named_modules() if name != "conv8_scenes"]


@pytest.mark.parametrize("variant", ["short", "soundnet8"])
def test_sound_receptive_field_is_the_span_of_input_reaching_one_step(variant):
    net = SoundNet8(width=1 / 16, variant=variant, objects_dim=1, scenes_dim=1)
    size, hop = receptive_field_for(variant)
    copy = _linear_copy(_sound_layers(net), 1)
    measured_size, measured_hop = _support_1d(copy, 3 * size)
    assert (measured_size, measured_hop) == (size, hop)


def test_sound_receptive_field_values_and_consistency():
    assert receptive_field_for("soundnet8") == (320_542, 65_536)
    assert receptive_field_for("short") == (25_006, 4_096)
    for variant in ("soundnet8", "short"):
        size, hop = receptive_field_for(variant)
        # zero padding lets the first step's field start before the clip
        assert min_samples_for(variant) < size
        # one more hop of samples gives one more output step
        n = min_samples_for(variant)
        assert output_steps_for(n + hop, variant) == output_steps_for(n, variant) + 1
        assert output_steps_for(n + hop - 1, variant) == output_steps_for(n, variant)


def _support_2d(net: nn.Sequential, side: int) -> tuple[int, int]:
    x = torch.zeros(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    y = net.double()(x)
    i = y.shape[-1] // 2
    rows = []
    for j in (i, i + 1):
        (g,) = torch.autograd.grad(y[0, 0, i, j], x, retain_graph=True)
        cols = torch.nonzero(g[0, 0].sum(0)).flatten()
        rows.append((int(cols[0]), int(cols[-1])))
    return rows[0][1] - rows[0][0] + 1, rows[1][0] - rows[0][0]


@pytest.mark.parametrize(
    "backbone",
    [VGG16Features(), SmallCNN(width=4, out_channels=8, stride=8), SmallCNN(width=4, out_channels=8, stride=16)],
    ids=["vgg16", "small-stride8", "small-stride16"],
)
def test_visual_receptive_field_is_the_span_of_pixels_reaching_one_cell(backbone):
    size, stride = receptive_field(backbone)
    assert stride == backbone.stride
    copy = _linear_copy(list(backbone.features), 2)
    assert _support_2d(copy, 3 * size) == (size, stride)


def test_vgg16_conv5_3_receptive_field_is_196():
    assert receptive_field(VGG16Features()) == (196, 16)
    with pytest.raises(TypeError):
        receptive_field(nn.Linear(2, 2))
