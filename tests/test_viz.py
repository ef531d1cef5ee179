"""Tests of soundloc.viz: figure structure, the overlay's bilinear upsampling (against values
worked out by hand), box scaling, the spectrogram's frequency axis, and atomic PNG writing."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from soundloc.data import Annotation  # noqa: E402
from soundloc.viz import (  # noqa: E402
    attention_grid,
    log_mel_spectrogram,
    plot_history,
    plot_localization,
    plot_metric_bars,
    plot_sound,
    save_figure,
    show_attention,
    upsample_attention,
)


@pytest.fixture(autouse=True)
def _close_figures():  # type: ignore[no-untyped-def]
    yield
    plt.close("all")


# Bilinear upsampling of [[0, 1], [2, 3]] from 2x2 to 4x4 with half-pixel centres: output pixel
# p maps to source coordinate (p + 0.5) / 2 - 0.5 in {-0.25, 0.25, 0.75, 1.25}, clamped to
# [0, 1], i.e. weights 0, 0.25, 0.75, 1 on the second row/column. Value = 2*wy + wx.
_W = [0.0, 0.25, 0.75, 1.0]
HAND = np.array([[2 * wy + wx for wx in _W] for wy in _W])


def test_overlay_upsamples_bilinearly() -> None:
    att = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    image = torch.zeros(3, 4, 4)
    ax = show_attention(image, att, normalize=False)
    assert len(ax.images) == 2
    overlay = np.asarray(ax.images[1].get_array())
    assert overlay.shape == (4, 4)
    assert overlay[1, 1] == pytest.approx(0.75)  # 0.75 * 0.25 * 1 + 0.25 * 0.75 * 2 + 0.25**2 * 3
    np.testing.assert_allclose(overlay, HAND, atol=1e-6)
    # normalised (the default): min-max scaled to [0, 1]
    ax2 = show_attention(image, att)
    np.testing.assert_allclose(np.asarray(ax2.images[1].get_array()), HAND / 3.0, atol=1e-6)
    assert ax2.images[1].get_alpha() == 0.5
    # a constant map carries no information: drawn as zeros, not NaN
    assert torch.equal(upsample_attention(torch.full((2, 2), 0.25), (4, 4)), torch.zeros(4, 4))


def test_boxes_are_scaled_from_their_frame() -> None:
    ann = Annotation(boxes=(((0, 0, 128, 64), (128, 128, 256, 256)), ((64, 32, 192, 96),)))
    ax = show_attention(torch.rand(3, 64, 64), torch.rand(4, 4), boxes=ann)
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 3
    # 256-frame -> 64-pixel image: factor 1/4; pixel x covers [x - 0.5, x + 0.5]
    r = rects[2]
    assert (r.get_x(), r.get_y(), r.get_width(), r.get_height()) == pytest.approx((15.5, 7.5, 32.0, 16.0))
    assert rects[0].get_edgecolor() != rects[2].get_edgecolor()  # one colour per annotator
    # a plain list of boxes in a custom frame
    _, ax = plt.subplots()
    show_attention(torch.rand(3, 20, 40), torch.rand(2, 2), ax=ax, boxes=[(0, 0, 10, 10)], frame_size=10)
    (r,) = ax.patches
    assert (r.get_width(), r.get_height()) == pytest.approx((40.0, 20.0))


def test_show_attention_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="image"):
        show_attention(torch.rand(4, 4), torch.rand(2, 2))
    with pytest.raises(ValueError, match="attention"):
        show_attention(torch.rand(3, 4, 4), torch.rand(1, 2, 2))
    with pytest.raises(TypeError, match="attention"):
        show_attention(torch.rand(3, 4, 4), [[0.1, 0.2]])


def test_attention_grid_layout() -> None:
    images = torch.rand(3, 3, 32, 32)
    maps = {"unsupervised": torch.rand(3, 4, 4), "semi-supervised": torch.rand(3, 4, 4)}
    anns = [Annotation(boxes=(((0, 0, 100, 100),),)), None, None]
    fig = attention_grid(images, maps, titles=["a", "b", "c"], annotations=anns)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 3 + 1  # and the colour bar
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image\nand boxes", "unsupervised", "semi-supervised"]
    assert fig.axes[-1].get_ylabel() == "attention (min-max scaled)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["annotator 1"]  # one annotator drew
    assert fig.axes[3].get_ylabel() == "b"
    assert len(fig.axes[0].patches) == 1 and len(fig.axes[3].patches) == 0
    # the overlay of row 1, column 2 is the semi-supervised map of sample 1: [[0, 1], [2, 3]] on a
    # 4x4 image, upsampled and min-max scaled by hand (HAND / 3)
    small = {"unsupervised": torch.rand(2, 2, 2),
             "semi-supervised": torch.stack([torch.rand(2, 2), torch.tensor([[0.0, 1.0], [2.0, 3.0]])])}
    fig = attention_grid(torch.rand(2, 3, 4, 4), small)
    np.testing.assert_allclose(np.asarray(fig.axes[5].images[1].get_array()), HAND / 3.0, atol=1e-6)
    with pytest.raises(ValueError, match="semi"):
        attention_grid(images, {"semi": torch.rand(2, 4, 4)})


def test_plot_history_one_panel_per_key() -> None:
    hists = {
        "unsupervised": [{"epoch": 1, "loss": 0.5, "l_u": 0.5, "l_s": None}, {"epoch": 2, "loss": 0.4, "l_u": 0.4, "l_s": None}],
        "semi": [{"epoch": 1, "loss": 3.0, "l_u": 0.5, "l_s": 2.5}, {"epoch": 2, "loss": 2.0, "l_u": 0.4, "l_s": 1.6}],
    }
    fig = plot_history(hists, keys=("loss", "l_s"))
    assert len(fig.axes) == 2
    loss_ax, ls_ax = fig.axes
    assert len(loss_ax.lines) == 2
    assert len(ls_ax.lines) == 1  # the unsupervised run has no L_S
    np.testing.assert_allclose(ls_ax.lines[0].get_ydata(), [2.5, 1.6])
    np.testing.assert_allclose(ls_ax.lines[0].get_xdata(), [1, 2])
    with pytest.raises(ValueError):
        plot_history({})


def test_plot_sound_frequency_axis() -> None:
    sr, f0, n_mels = 22050, 1000.0, 64
    t = torch.arange(sr) / sr
    tone = 0.5 * torch.sin(2 * math.pi * f0 * t)
    fig = plot_sound(tone, sample_rate=sr, n_mels=n_mels)
    assert len(fig.axes) == 2
    spec = np.asarray(fig.axes[1].images[0].get_array())
    assert spec.shape[0] == n_mels
    # HTK mel scale: band k is centred on the (k+1)-th of n_mels + 2 points equally spaced in mel
    # between 0 and sr/2; the loudest band of a 1 kHz tone is the one centred nearest 1 kHz.
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    centres = inv(np.linspace(0, mel(sr / 2), n_mels + 2))[1:-1]
    assert int(spec.mean(axis=1).argmax()) == int(np.abs(centres - f0).argmin())
    assert torch.equal(log_mel_spectrogram(tone, sr, n_mels=n_mels), torch.from_numpy(spec))
    with pytest.raises(ValueError, match="waveform"):
        plot_sound(torch.rand(2, 100))
    # drawing into given axes
    fig2, axes = plt.subplots(2, 1)
    assert plot_sound(tone, ax=axes) is fig2


def test_metric_bars() -> None:
    results = {
        "semi-supervised": {"success": 0.8, "auc": 0.6},
        "unsupervised": {"success": 0.4, "auc": 0.45},
        "random": {"success": 0.12, "auc": 0.32, "success_std": 0.02, "auc_std": 0.01},
    }
    fig = plot_metric_bars(results)
    (ax,) = fig.axes
    bars = [p for c in ax.containers if hasattr(c, "patches") for p in c.patches]
    assert len(bars) == 6
    assert sorted(round(b.get_height(), 6) for b in bars) == sorted([80.0, 60.0, 40.0, 45.0, 12.0, 32.0])
    assert any(c.errorbar is not None for c in ax.containers if hasattr(c, "errorbar"))
    with pytest.raises(KeyError, match="auc"):
        plot_metric_bars({"x": {"success": 0.1}})


def test_save_figure_writes_a_png_atomically(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fig = plot_history({"a": [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]})
    out = tmp_path / "sub" / "curve.png"
    save_figure(fig, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as im:
        im.verify()
    assert sorted(p.name for p in out.parent.iterdir()) == ["curve.png"]  # no temp file left
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "curve")
    with pytest.raises(TypeError, match="Figure"):
        save_figure(object(), tmp_path / "x.png")  # type: ignore[arg-type]


def _run(bound_ctx: float, free_ctx: float) -> dict:
    def row(o: float, c: float, bc: float, fc: float) -> dict:
        return {"object_density": o, "context_density": c,
                "groups": {"context_bound": {"object_density": o, "context_density": bc},
                           "free": {"object_density": o, "context_density": fc}}}
    return {"schemes": {"unsupervised": row(1.0, 1.2, bound_ctx, free_ctx), "supervised": row(2.0, 0.5, 0.5, 0.5),
                        "semi_supervised": row(1.9, 0.4, 0.4, 0.4), "random": row(1.0, 1.0, 1.0, 1.0)}}


def test_plot_densities_by_group_shows_each_groups_means() -> None:
    from soundloc.viz import plot_densities

    fig = plot_densities([_run(1.6, 0.8), _run(1.2, 0.6)], groups=("context_bound", "free"))
    bound, free = fig.axes
    # context bars are the second group of four bars: unsupervised first
    assert round(bound.patches[4].get_height(), 6) == 1.4 and round(free.patches[4].get_height(), 6) == 0.7
    assert "context-bound" in bound.get_title() and "free" in free.get_title()


def test_plot_sweep_means_and_spread() -> None:
    from soundloc.viz import plot_sweep

    fig = plot_sweep({0.25: [_run(1.0, 1.0), _run(1.2, 1.0)], 0.9: [_run(1.6, 1.0), _run(2.0, 1.0)]})
    line = fig.axes[0].lines[0]  # unsupervised context density: means 1.1 and 1.8
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), [1.1, 1.8])
    np.testing.assert_allclose(np.asarray(line.get_xdata(), dtype=float), [0.25, 0.9])


def test_localization_overlay_is_in_multiples_of_uniform_on_a_fixed_scale() -> None:
    # alpha = [[0.1, 0.2], [0.3, 0.4]]: 4 alpha = 0.4 + 0.4 [[0, 1], [2, 3]], upsampled by hand (HAND)
    alpha = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    fig = plot_localization(torch.zeros(3, 4, 4), alpha, title="a.png + b.wav", peak=(2.0, 3.0))
    ax, bar = fig.axes
    np.testing.assert_allclose(np.asarray(ax.images[1].get_array()), 0.4 + 0.4 * HAND, atol=1e-6)
    norm = ax.images[1].norm
    assert (norm.vmin, norm.vmax) == (0.0, 4.0)  # the default scale: peak 1.6x uniform stays low in it
    labels = {t.get_text(): t.get_position()[1] for t in bar.get_yticklabels()}
    assert labels["uniform"] == 1.0 and labels["0\u00d7"] == 0.0 and labels["4\u00d7"] == 4.0
    assert [line.get_ydata()[0] for line in bar.lines] == [1.0, 1.0]  # the uniform level, marked
    assert ax.lines[0].get_xydata().tolist() == [[2.0, 3.0]] and fig.texts[0].get_text() == "a.png + b.wav"
    # a peak above the default scale extends it; vmax fixes it (a common scale) and the bar says when it clips
    peaked = torch.full((4, 4), 0.03)
    peaked[0, 0] = 0.55  # 8.8x uniform
    assert plot_localization(torch.zeros(3, 8, 8), peaked).axes[0].images[1].norm.vmax == pytest.approx(8.8)
    fixed = plot_localization(torch.zeros(3, 8, 8), peaked, vmax=2.0, warning="silent")
    assert fixed.axes[0].images[1].norm.vmax == 2.0
    assert fixed.texts[-1].get_text() == "silent" and fixed.texts[-1].get_color() == "red"
    with pytest.raises(ValueError, match="vmax"):
        plot_localization(torch.zeros(3, 4, 4), alpha, vmax=1.0)


def test_displayed_text_px_by_hand() -> None:
    from soundloc.viz import COLUMN_PX, FIGURE_DPI, displayed_text_px

    # one 12-point text inside axes that fill the figure (no axis drawn): the saved width is the
    # figure's. 12 pt at 100 px per inch is 12 * 100 / 72 = 16.67 px; a figure twice the column's
    # width (13.8 in = 1380 px for 690) is shown at half size: 8.33 px.
    for width, expected in ((2 * COLUMN_PX / FIGURE_DPI, 12 * 100 / 72 / 2), (4.0, 12 * 100 / 72)):
        fig = plt.figure(figsize=(width, 2))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(np.zeros((2, int(width * 10))), aspect="auto")
        ax.set_axis_off()
        ax.text(0.5, 0.5, "label", fontsize=12, transform=ax.transAxes, ha="center")
        assert displayed_text_px(fig) == pytest.approx(expected, rel=1e-3)
    # tick labels count where the axis is drawn; an empty figure has no text to measure
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1])
    ax.tick_params(labelsize=6)
    assert displayed_text_px(fig) == pytest.approx(6 * 100 / 72)
    with pytest.raises(ValueError, match="no text"):
        displayed_text_px(plt.figure())


def _library_figures() -> dict[str, object]:
    from soundloc.viz import plot_densities, plot_sweep

    images = torch.rand(3, 3, 32, 32)
    anns = [Annotation(boxes=(((0, 0, 100, 100),),)), None, None]
    hist = {"semi_supervised": [{"epoch": 1, "loss": 3.0, "l_u": 0.5, "l_s": 2.5},
                                {"epoch": 2, "loss": 2.0, "l_u": 0.4, "l_s": 1.6}]}
    return {
        "attention_grid, six columns": lambda: attention_grid(
            images, {f"sound: class {k}": torch.rand(3, 4, 4) for k in range(5)},
            titles=["scene 1\nsounding: disk\nsilent: square"] * 3, annotations=anns, cell_size=2.0),
        "plot_history, three keys": lambda: plot_history(hist, keys=("loss", "l_u", "l_s")),
        "plot_sound": lambda: plot_sound(torch.randn(8000), sample_rate=16000, title="a clip"),
        "plot_metric_bars": lambda: plot_metric_bars(
            {"semi-supervised": {"success": 0.5, "auc": 0.4}, "random": {"success": 0.2, "auc": 0.3},
             "centre prior": {"success": 0.3, "auc": 0.35}}, title="scores"),
        "plot_densities, two groups": lambda: plot_densities([_run(1.6, 0.8), _run(1.2, 0.6)],
                                                             groups=("context_bound", "free")),
        "plot_sweep": lambda: plot_sweep({0.25: [_run(1.0, 1.0)], 0.9: [_run(1.6, 1.0)]}),
    }


@pytest.mark.parametrize("name", list(_library_figures()))
def test_library_figures_read_at_the_books_width(name: str) -> None:
    """Every figure function of the library, at its widest typical use, keeps its smallest text at
    MIN_TEXT_PX or more as the book shows it (before the book's style, plot_history with three
    panels showed 6.6 px, attention_grid with six columns 5.9 px), whatever the caller's rcParams."""
    from soundloc.viz import MAX_WIDTH, MIN_TEXT_PX, displayed_text_px

    with matplotlib.rc_context({"font.size": 6, "axes.titlesize": 6, "legend.fontsize": 5}):
        fig = _library_figures()[name]()
    fig.canvas.draw()
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width
    assert width <= MAX_WIDTH + 0.2, f"{name}: {width:.1f} in wide"
    assert displayed_text_px(fig) >= MIN_TEXT_PX, name
