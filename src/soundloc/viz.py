"""Plots for the chapters: attention overlays, the paper's qualitative grids, training curves,
sounds, and metric bars (matplotlib only).

Every function returns a matplotlib ``Figure`` (or draws into the ``Axes`` it is given) and
never calls ``plt.show()``; :func:`save_figure` writes a figure atomically. The attention
overlays follow the paper's qualitative figures (Senocak et al., CVPR 2018, Figs. 1, 5-8): the
map α over the visual grid is upsampled bilinearly to the frame and drawn over it with a ``jet``
colormap; annotation boxes, given in their ``frame_size`` frame (256 for Flickr-SoundNet), are
scaled to the image.

One style for every figure (:data:`STYLE`, :func:`use_style`): font sizes are chosen for the
size at which the HTML book *shows* a figure, not the size it is saved at. The book's text
column is :data:`COLUMN_PX` CSS pixels wide and the notebook backend draws :data:`FIGURE_DPI`
pixels per inch, so a figure wider than :data:`PAGE_WIDTH` inches is scaled down, its text
with it; :func:`displayed_text_px` says how tall the smallest text then is on the page, and
the library's figures keep it at or above :data:`MIN_TEXT_PX`. A chapter that draws its own
figure keeps it at most :data:`MAX_WIDTH` inches wide, with no text under 10 points.
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from soundloc.constants import ANNOTATION_FRAME, SAMPLE_RATE, SCHEMES
from soundloc.data.types import Annotation
from soundloc.utils.files import atomic_path
from soundloc.utils.summary import mean_std

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of the annotators' boxes (one per annotator, cycled).
BOX_COLOURS = ("white", "lime", "magenta", "cyan", "yellow")
#: One colour per learning scheme (and baseline) in every figure of the book.
SCHEME_COLOURS = {
    "unsupervised": "tab:orange", "supervised": "tab:blue", "semi_supervised": "tab:green",
    "random": "tab:gray", "whole image": "tab:purple", "centre prior": "tab:olive",
}
#: Readable names of the training history's keys.
HISTORY_TITLES = {
    "loss": "total loss", "l_u": "L_U (triplet loss)", "l_s": "L_S (attention cross-entropy)",
    "val_loss": "validation loss",
}


#: Width in CSS pixels of the HTML book's output column (sphinx-book-theme in a 1280-pixel
#: window; the column keeps this width in wider windows).
COLUMN_PX = 690
#: Pixels per inch of a figure shown in a notebook (matplotlib's default ``figure.dpi``, which
#: the inline backend keeps).
FIGURE_DPI = 100
#: Width in inches of a figure that the book shows at its natural size.
PAGE_WIDTH = COLUMN_PX / FIGURE_DPI
#: The smallest text height, in CSS pixels on the page, that a figure of the library may show
#: (the book's body text is 16 px, its printed output 12 px).
MIN_TEXT_PX = 10.0
#: The widest figure of the library, in inches: 1.35 times :data:`PAGE_WIDTH`, shown at three
#: quarters of its size, where a 10-point label is 10.3 px tall.
MAX_WIDTH = 1.35 * PAGE_WIDTH
#: The book's figure style (matplotlib rcParams): no text under 10 points, so that it reads on
#: every figure up to :data:`MAX_WIDTH` inches wide.
STYLE: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "figure.titlesize": 11,
    "figure.dpi": FIGURE_DPI,
}

_F = TypeVar("_F", bound=Callable[..., Any])


def use_style() -> None:
    """Make :data:`STYLE` matplotlib's default for every later figure (a chapter calls it once)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def style_context() -> Any:
    """A context in which matplotlib draws in :data:`STYLE` (``matplotlib.rc_context``): the
    library's figure functions draw in it, whatever the caller's rcParams."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def styled(fn: _F) -> _F:
    """Decorator: ``fn`` draws its figure in :data:`STYLE` (:func:`style_context`)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with style_context():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def displayed_text_px(fig: "Figure", column_px: float = COLUMN_PX, dpi: float = FIGURE_DPI) -> float:
    """The height in CSS pixels, on the book's page, of the smallest text that ``fig`` shows: its
    font size in points at ``dpi`` pixels per inch, times the factor by which the book scales the
    figure down to fit the ``column_px`` column (1 for a figure that fits). The figure is drawn
    to measure its width as the notebook saves it (the tight bounding box of what is drawn).

    The texts: the figure's own (suptitle, ``fig.text``, figure legends) and, for every axes
    (colour bars included), its titles, texts, annotations and legend, and where its axis is
    drawn its axis labels and tick labels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    width_px = fig.get_tightbbox(renderer).width * dpi
    scale = min(1.0, column_px / width_px)
    texts = list(fig.texts)
    legends = list(fig.legends)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, getattr(ax, "_left_title", ax.title), getattr(ax, "_right_title", ax.title), *ax.texts]
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_visible():
                    texts += [axis.label, *axis.get_ticklabels()]
    for legend in legends:
        if legend.get_visible():
            texts += [*legend.get_texts(), legend.get_title()]
    sizes = [t.get_fontsize() for t in texts if t.get_visible() and t.get_text().strip()]
    if not sizes:
        raise ValueError("the figure shows no text")
    return float(min(sizes)) * dpi / 72.0 * scale


def scheme_colour(name: str) -> str | None:
    """The colour of a scheme or baseline (``"semi-supervised"`` or ``"semi_supervised"``),
    or ``None`` for another name (matplotlib then picks one)."""
    return SCHEME_COLOURS.get(str(name).replace("-", "_"), SCHEME_COLOURS.get(str(name)))


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x.detach().cpu()


def _check_image(image: Any, name: str = "image") -> torch.Tensor:
    img = _as_tensor(image, name)
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"{name} must have shape [3, H, W], got {tuple(img.shape)}")
    if not img.is_floating_point():
        img = img.float() / 255.0
    return img.float()


def _check_map(attention: Any, name: str = "attention") -> torch.Tensor:
    a = _as_tensor(attention, name)
    if a.dim() != 2:
        raise ValueError(f"{name} must have shape [h, w], got {tuple(a.shape)}")
    if not a.is_floating_point():
        a = a.float()
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a.float()


def upsample_attention(attention: Any, size: tuple[int, int], normalize: bool = True) -> torch.Tensor:
    """Bilinear upsampling of an ``[h, w]`` map to ``size = (H, W)`` (half-pixel centres,
    ``align_corners=False``, as the evaluation protocol resizes), then min-max normalised to
    [0, 1] when ``normalize`` (a constant map becomes zeros)."""
    a = _check_map(attention)
    up = F.interpolate(a[None, None], size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)[0, 0]
    if normalize:
        lo, hi = up.min(), up.max()
        up = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
    return up


def _box_list(boxes: Any, frame_size: int) -> tuple[list[list[tuple[float, float, float, float]]], int]:
    """Boxes grouped by annotator, and the frame they live in."""
    if isinstance(boxes, Annotation):
        return [list(map(tuple, ann)) for ann in boxes.boxes], boxes.frame_size  # type: ignore[misc]
    seq = list(boxes)
    if not seq:
        return [], frame_size
    if all(isinstance(b, (tuple, list)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b) for b in seq):
        return [[tuple(float(v) for v in b) for b in seq]], frame_size  # type: ignore[misc]
    out = []
    for j, ann in enumerate(seq):
        group = []
        for b in ann:
            if not (isinstance(b, (tuple, list)) and len(b) == 4):
                raise ValueError(f"boxes: annotator {j} has a box {b!r} that is not (x1, y1, x2, y2)")
            group.append(tuple(float(v) for v in b))
        out.append(group)
    return out, frame_size  # type: ignore[return-value]


def draw_boxes(ax: "Axes", boxes: Any, image_size: tuple[int, int], frame_size: int = ANNOTATION_FRAME,
               linewidth: float = 1.5) -> int:
    """Draw annotation boxes on ``ax`` as rectangles; returns how many were drawn.

    ``boxes``: an :class:`~soundloc.data.Annotation` (its own ``frame_size`` is used), a list of
    ``(x1, y1, x2, y2)`` boxes, or a list of such lists (one per annotator, one colour each),
    in the coordinates of a ``frame_size × frame_size`` frame; they are scaled to
    ``image_size = (H, W)``. Pixel ``(x, y)`` of the image covers ``[x - 0.5, x + 0.5]`` on the
    axes (imshow's convention), so a half-open box ``x1:x2`` spans ``x1 - 0.5`` to ``x2 - 0.5``.
    """
    from matplotlib.patches import Rectangle

    groups, frame = _box_list(boxes, frame_size)
    h, w = image_size
    sx, sy = w / frame, h / frame
    n = 0
    for j, group in enumerate(groups):
        colour = BOX_COLOURS[j % len(BOX_COLOURS)]
        for x1, y1, x2, y2 in group:
            ax.add_patch(Rectangle((x1 * sx - 0.5, y1 * sy - 0.5), (x2 - x1) * sx, (y2 - y1) * sy,
                                   fill=False, edgecolor=colour, linewidth=linewidth))
            n += 1
    return n


def _image_array(image: torch.Tensor) -> np.ndarray:
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def show_image(image: Any, ax: "Axes | None" = None, title: str | None = None) -> "Axes":
    """Draw a ``[3, H, W]`` image in [0, 1] (no axes ticks)."""
    import matplotlib.pyplot as plt

    img = _check_image(image)
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(_image_array(img), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def show_attention(
    image: Any,
    attention: Any,
    ax: "Axes | None" = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    boxes: Any = None,
    frame_size: int = ANNOTATION_FRAME,
    normalize: bool = True,
    title: str | None = None,
) -> "Axes":
    """Overlay an attention map on its image (the paper's qualitative figures).

    Args:
        image: ``[3, H, W]`` float in [0, 1].
        attention: ``[h, w]`` map on the model's grid; upsampled bilinearly to ``H × W``
            (:func:`upsample_attention`) and, with ``normalize``, min-max scaled to [0, 1] for the
            colormap (as the evaluation protocol does before thresholding).
        ax: axes to draw into (a new figure when ``None``).
        alpha: opacity of the overlay.
        cmap: matplotlib colormap name.
        boxes: optional annotation boxes (see :func:`draw_boxes`), in a ``frame_size`` frame.
        title: optional axes title.

    Returns the axes; ``ax.images[0]`` is the frame and ``ax.images[1]`` the ``[H, W]`` overlay.
    """
    img = _check_image(image)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    h, w = img.shape[1:]
    up = upsample_attention(attention, (h, w), normalize=normalize)
    ax = show_image(img, ax=ax, title=title)
    kwargs = {"vmin": 0.0, "vmax": 1.0} if normalize else {}
    ax.imshow(up.numpy(), cmap=cmap, alpha=alpha, interpolation="nearest", **kwargs)
    if boxes is not None:
        draw_boxes(ax, boxes, (h, w), frame_size)
    return ax


#: The top of :func:`plot_localization`'s default scale, as a multiple of the uniform mass per
#: cell: all the attention spread evenly over a quarter of the image (about an object's box).
#: A flatter map stays in the low colours, so it does not look peaked; a more peaked one extends
#: the scale to its own peak.
LOCALIZATION_VMAX = 4.0


@styled
def plot_localization(
    image: Any,
    attention: Any,
    title: str | None = None,
    vmax: float | None = None,
    peak: tuple[float, float] | None = None,
    warning: str | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
    width: float = 6.0,
) -> "Figure":
    """The overlay ``soundloc localize`` writes: the attention map α over its image, in
    attention mass per cell as a multiple of the uniform mass 1 / (h w), on a scale from 0 that
    is not stretched to the map (a near-uniform map stays in the low colours), with a colour bar
    on which the uniform level is marked.

    Args:
        image: ``[3, H, W]`` float in [0, 1], drawn ``width`` inches wide.
        attention: ``[h, w]`` map on the model's grid (summing to 1), upsampled bilinearly.
        title: the figure's title (e.g. the image, the sound and the checkpoint).
        vmax: the top of the scale, as a multiple of uniform (give the same to compare several
            figures); default the larger of :data:`LOCALIZATION_VMAX` and the map's peak.
        peak: ``(x, y)`` in the image's pixels to mark with a cross (the peak cell's centre).
        warning: a line under the title, in red (e.g. a near-silent sound), and the overlay hatched.

    Returns the figure: ``axes[0]`` the overlay (``images[1]`` the upsampled map as multiples of
    uniform), ``axes[1]`` the colour bar.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    img, a = _check_image(image), _check_map(attention)
    ratio = a * a.numel() / a.sum()  # mass per cell, as a multiple of the uniform mass
    top = float(ratio.max())
    vmax = max(LOCALIZATION_VMAX, top) if vmax is None else vmax
    if not (isinstance(vmax, (int, float)) and math.isfinite(vmax) and vmax > 1.0):
        raise ValueError(f"vmax must be a number > 1 (a multiple of the uniform level), got {vmax!r}")
    from matplotlib.patches import Rectangle

    h, w = img.shape[1:]
    lines = (title.count("\n") + 1 if title else 0) + (1 if warning else 0)
    fig, ax, cax = _overlay_axes(plt, width, width * h / w, 0.25 * lines + 0.1)  # room for the title lines
    fig_w, fig_h = fig.get_size_inches()
    show_image(img, ax=ax)
    up = upsample_attention(ratio, (h, w), normalize=False)
    norm = Normalize(0.0, float(vmax), clip=True)
    overlay = ax.imshow(up.numpy(), cmap=cmap, norm=norm, alpha=alpha, interpolation="nearest")
    if warning:  # the map of a sound that is not there: crossed out
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, hatch="//", edgecolor="red", linewidth=0, alpha=0.6))
    if peak is not None:
        ax.plot([peak[0]], [peak[1]], marker="+", color="white", markersize=18, mew=2.5)
    _uniform_colour_bar(fig.colorbar(overlay, cax=cax, extend="max" if top > vmax else "neither"), float(vmax),
                        a.numel())
    centre = 0.5 * width / fig_w  # over the image
    for text, colour, top_inches in ((title, None, 0.05), (warning, "red", 0.05 + 0.25 * (lines - 1))):
        if text:
            fig.text(centre, 1.0 - top_inches / fig_h, text, color=colour, fontsize=10, ha="center", va="top")
    return fig


def _overlay_axes(plt: Any, width: float, height: float, head: float) -> tuple[Any, Any, Any]:
    """A figure with an image's axes ``width`` x ``height`` inches, ``head`` inches of room
    above it and a colour bar's axes on its right: ``(fig, ax, cax)``."""
    fig_w, fig_h = width + 1.4, height + head  # the colour bar and its labels on the right
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.0, width / fig_w, height / fig_h))
    cax = fig.add_axes(((width + 0.15) / fig_w, 0.0, 0.22 / fig_w, height / fig_h))
    return fig, ax, cax


def _uniform_colour_bar(bar: Any, vmax: float, cells: int) -> None:
    """A colour bar in multiples of the uniform level 1 / ``cells``, the uniform level marked
    (a dashed line, labelled) and ``vmax`` labelled at the top."""
    from matplotlib.ticker import MaxNLocator

    bar.solids.set_alpha(1.0)
    bar.ax.axhline(1.0, color="white", linewidth=3)
    bar.ax.axhline(1.0, color="black", linewidth=1.2, linestyle="--")
    steps = MaxNLocator(nbins=5, integer=True).tick_values(0.0, vmax)
    ticks = sorted({0.0, 1.0, *[float(t) for t in steps if 1.5 <= t <= vmax], vmax})
    if len(ticks) > 2 and ticks[-1] - ticks[-2] < 0.15 * vmax:  # vmax itself stays labelled
        ticks.pop(-2)
    bar.set_ticks(ticks, labels=["uniform" if t == 1.0 else f"{t:.3g}\u00d7" for t in ticks])
    bar.ax.tick_params(labelsize=9)
    bar.set_label(f"attention per cell, as a multiple of uniform (1/{cells})", fontsize=9)


@styled
def attention_grid(
    images: Any,
    maps: Mapping[str, Any],
    titles: Sequence[str] | None = None,
    annotations: Sequence[Any] | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    cell_size: float = 2.2,
) -> "Figure":
    """The layout of the paper's qualitative figures: one row per sample, the image then one
    overlay per scheme / model.

    Args:
        images: ``[N, 3, H, W]`` (or a sequence of ``[3, H, W]``).
        maps: column name -> ``[N, h, w]`` attention maps (e.g. ``{"unsupervised": ...,
            "semi-supervised": ...}``), in column order.
        titles: optional row labels (e.g. sample ids), one per sample.
        annotations: optional per-sample boxes (an :class:`~soundloc.data.Annotation`, a box
            list, or ``None``), drawn on the image column.

    ``cell_size`` is the side of one panel in inches, made smaller where the figure would be
    wider than :data:`MAX_WIDTH`. Returns a figure with ``N × (1 + len(maps))`` axes.
    """
    import matplotlib.pyplot as plt

    imgs, checked = _grid_inputs(images, maps, titles, annotations)
    n, cols = len(imgs), 1 + len(checked)
    cell_size = min(cell_size, (MAX_WIDTH - 1.5) / cols)  # room for the row labels and the colour bar
    fig, axes = plt.subplots(n, cols, figsize=(cell_size * cols, cell_size * n), squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        show_image(imgs[i], ax)
        if annotations is not None and annotations[i] is not None:
            draw_boxes(ax, annotations[i], tuple(imgs[i].shape[1:]))  # type: ignore[arg-type]
        if titles is not None:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(str(titles[i]))
        for k, (name, m) in enumerate(checked.items(), start=1):
            show_attention(imgs[i], m[i], ax=axes[i, k], alpha=alpha, cmap=cmap)
    axes[0, 0].set_title("image\nand boxes")
    for k, name in enumerate(checked, start=1):  # "sound: disk" on two lines, to fit a narrow column
        axes[0, k].set_title(str(name).replace(": ", ":\n"), color=scheme_colour(name) or "black")
    fig.tight_layout()
    if annotations is not None and any(a is not None for a in annotations):
        _annotator_legend(fig, annotations, n * cell_size)
    if checked:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.subplots_adjust(right=0.88)
        cax = fig.add_axes((0.9, 0.25, 0.02, 0.5))
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=cax)
        bar.set_label("attention (min-max scaled)")
    return fig


def _grid_inputs(images: Any, maps: Mapping[str, Any], titles: Sequence[str] | None,
                 annotations: Sequence[Any] | None) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """:func:`attention_grid`'s images and maps, checked: one map and one title or box list per image."""
    imgs = [_check_image(images[i], f"images[{i}]") for i in range(len(images))]
    n = len(imgs)
    if n == 0:
        raise ValueError("images is empty")
    if not isinstance(maps, Mapping):
        raise TypeError(f"maps must be a dict name -> [N, h, w] tensor, got {type(maps).__name__}")
    checked = {}
    for name, m in maps.items():
        t = _as_tensor(m, f"maps[{name!r}]")
        if t.dim() != 3 or t.shape[0] != n:
            raise ValueError(f"maps[{name!r}] must have shape [{n}, h, w], got {tuple(t.shape)}")
        checked[name] = t
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} images")
    if annotations is not None and len(annotations) != n:
        raise ValueError(f"annotations has {len(annotations)} entries for {n} images")
    return imgs, checked


def _annotator_legend(fig: Any, annotations: Sequence[Any], height: float) -> None:
    """A legend of the annotators' box colours below a figure ``height`` inches tall."""
    from matplotlib.patches import Patch

    n_ann = max(len(_box_list(a, ANNOTATION_FRAME)[0]) for a in annotations if a is not None)
    handles = [Patch(facecolor="none", edgecolor=BOX_COLOURS[j % len(BOX_COLOURS)], linewidth=1.5,
                     label=f"annotator {j + 1}") for j in range(n_ann)]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, n_ann), frameon=True,
               facecolor="0.55", framealpha=1.0, bbox_to_anchor=(0.5, 0.0), title="boxes")
    fig.subplots_adjust(bottom=0.9 / (height + 0.9))


def _curve(hist: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """A history's values of ``key``: per step (x = fractional epoch) where the records hold
    their steps (``rec["step"][key]``), else one point per epoch; missing values skipped."""
    xs: list[float] = []
    ys: list[float] = []
    for n, rec in enumerate(hist, start=1):
        epoch = float(rec.get("epoch", n))
        steps = rec.get("step", {}).get(key) if isinstance(rec.get("step"), Mapping) else None
        pairs = [(epoch - 1 + (j + 1) / len(steps), v) for j, v in enumerate(steps)] if steps else [(epoch, rec.get(key))]
        for x, v in pairs:
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                xs.append(x)
                ys.append(float(v))
    return xs, ys


@styled
def plot_history(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Sequence[str] = ("loss",),
    logy: bool = False,
) -> "Figure":
    """Training curves side by side: one panel per key, one line per run (against ``epoch``;
    per step where the history records its steps).

    ``histories`` maps a run's name to its history (:meth:`soundloc.train.Trainer.fit`'s list
    of per-epoch dicts). Missing or ``None`` values are skipped (e.g. ``l_s`` of an
    unsupervised run). Returns a figure with ``len(keys)`` axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict name -> list of per-epoch dicts")
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise ValueError("keys is empty")
    fig, axes = plt.subplots(1, len(keys), figsize=(min(4.0 * len(keys), MAX_WIDTH), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, hist in histories.items():
            xs, ys = _curve(hist, key)
            if xs:
                per_step = any("step" in rec for rec in hist)
                ax.plot(xs, ys, marker=None if per_step and len(xs) > 20 else "o", markersize=3, linewidth=1,
                        label=str(name).replace("_", "-"), color=scheme_colour(name))
        ax.set_xlabel("epoch")
        ax.set_xlim(left=0)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(HISTORY_TITLES.get(key, key))
        if logy:
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def log_mel_spectrogram(
    waveform: Any, sample_rate: int = SAMPLE_RATE, n_mels: int = 64, n_fft: int = 1024, hop_length: int = 256
) -> torch.Tensor:
    """``[n_mels, frames]`` log-mel power spectrogram in dB (torchaudio's MelSpectrogram)."""
    import torchaudio

    w = _as_tensor(waveform, "waveform").float().reshape(-1)
    if w.numel() == 0:
        raise ValueError("waveform is empty")
    n_fft = min(n_fft, max(16, 2 ** int(math.log2(max(16, w.numel())))))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=min(hop_length, n_fft // 2), n_mels=n_mels
    )(w)
    return 10.0 * torch.log10(mel.clamp_min(1e-10))


@styled
def plot_sound(
    waveform: Any, sample_rate: int = SAMPLE_RATE, ax: "Sequence[Axes] | None" = None, title: str | None = None,
    n_mels: int = 64,
) -> "Figure":
    """A sound as its waveform (top) and log-mel spectrogram (bottom).

    ``waveform``: ``[T]`` (or ``[1, T]``) mono samples at ``sample_rate``. ``ax``: two axes to
    draw into (a new two-panel figure when ``None``). Returns the figure.
    """
    import matplotlib.pyplot as plt

    w = _as_tensor(waveform, "waveform")
    if w.dim() == 2 and w.shape[0] == 1:
        w = w[0]
    if w.dim() != 1:
        raise ValueError(f"waveform must have shape [T] or [1, T], got {tuple(w.shape)}")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    w = w.float()
    if ax is None:
        fig, axes = plt.subplots(2, 1, figsize=(6, 4), sharex=True)
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError(f"ax must be two axes (waveform, spectrogram), got {len(axes)}")
        fig = axes[0].figure
    duration = w.numel() / sample_rate
    t = np.arange(w.numel()) / sample_rate
    axes[0].plot(t, w.numpy(), linewidth=0.5)
    axes[0].set_ylabel("amplitude")
    axes[0].set_xlim(0, duration)
    if title:
        axes[0].set_title(title)
    spec = log_mel_spectrogram(w, sample_rate, n_mels=n_mels)
    axes[1].imshow(spec.numpy(), origin="lower", aspect="auto", cmap="magma",
                   extent=(0.0, duration, 0.0, float(spec.shape[0])))
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("mel band")
    if ax is None:
        fig.tight_layout()
    return fig


@styled
def plot_metric_bars(
    results: Mapping[str, Any],
    keys: Sequence[str] = ("success", "auc"),
    percent: bool = True,
    title: str | None = None,
) -> "Figure":
    """Grouped bars comparing schemes and baselines: one group per metric, one bar per entry.

    ``results`` maps a name (``"semi-supervised"``, ``"random"``...) to a dict of metrics (or
    anything with ``to_dict()``, e.g. :class:`soundloc.metrics.report.EvaluationResult`). A
    ``"<key>_std"`` entry, when present, is drawn as an error bar. ``percent`` shows fractions
    as percentages (the paper's tables). Returns a one-axes figure; every bar is labelled with
    its value.
    """
    import matplotlib.pyplot as plt

    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict name -> metrics")
    keys = [keys] if isinstance(keys, str) else list(keys)
    rows = {}
    for name, res in results.items():
        d = res.to_dict() if hasattr(res, "to_dict") else res
        if not isinstance(d, Mapping):
            raise TypeError(f"results[{name!r}] must be a dict of metrics, got {type(res).__name__}")
        missing = [k for k in keys if k not in d]
        if missing:
            raise KeyError(f"results[{name!r}] has no {missing}; it has {sorted(d)}")
        rows[name] = d
    scale = 100.0 if percent else 1.0
    names = list(rows)
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(1.2 + 1.0 * len(keys) * max(1.5, 0.5 * len(names)), 3.2))
    for i, name in enumerate(names):
        vals = [float(rows[name][k]) * scale for k in keys]
        errs = [rows[name].get(f"{k}_std") for k in keys]
        yerr = None if all(e is None for e in errs) else [float(e or 0.0) * scale for e in errs]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width, yerr=yerr, capsize=3, label=str(name))
        ax.bar_label(bars, fmt="%.1f" if percent else "%.3f", padding=2)
    ax.set_xticks(x)
    ax.set_xticklabels(list(keys))
    ax.set_ylabel("%" if percent else "value")
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def save_figure(fig: "Figure", path: str | os.PathLike[str], dpi: int = 120, close: bool = False, **kwargs: Any) -> None:
    """Write ``fig`` to ``path`` (format from the suffix: .png, .pdf, .svg...) atomically: a
    temporary file in the same folder renamed onto ``path`` once complete. ``close`` closes
    the figure afterwards."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if not suffix:
        raise ValueError(f"path {os.fspath(path)!r} needs a suffix naming the format (.png, .pdf, .svg)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=suffix, bbox_inches="tight", **kwargs)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)


@styled
def plot_densities(runs: Sequence[Mapping[str, Any]], groups: Sequence[str | None] = (None,)) -> "Figure":
    """Object and context attention densities per scheme over several runs, one panel per
    group of scenes (``None``: all scenes; ``"context_bound"``, ``"free"``: the runs'
    ``schemes.<s>.groups.<g>``). Bars: the mean; dots: the single runs; dashed line: chance (1).
    Returns the matplotlib Figure (its axes share the y scale)."""
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("plot_densities needs at least one run")
    names = [n for n in (*SCHEMES, "random") if all(n in r["schemes"] for r in runs)]
    fig, axes = plt.subplots(1, len(groups), figsize=(min(6.2 * len(groups), MAX_WIDTH), 4.0), squeeze=False,
                             sharey=True, layout="constrained")
    width = 0.38
    for ax, group in zip(axes[0], groups):
        for j, (key, label, colour) in enumerate(
            (("object_density", "on the object", "tab:green"), ("context_density", "on the context (band)", "tab:brown"))
        ):
            xs = np.arange(len(names)) + (j - 0.5) * width
            vals = np.array([[_group_row(r, n, group).get(key, np.nan) for n in names] for r in runs], dtype=float)
            ax.bar(xs, np.nanmean(vals, 0), width, label=label, color=colour, alpha=0.8)
            for row in vals:
                ax.plot(xs, row, "k.", ms=5)
        ax.axhline(1.0, color="k", ls="--", lw=1, label="chance")
        ax.set_xticks(np.arange(len(names)), [n.replace("_", "-") for n in names])
        for tick, n in zip(ax.get_xticklabels(), names):
            tick.set_color(scheme_colour(n) or "black")
        scenes = "all test scenes" if group is None else f"{group.replace('_', '-')} classes"
        ax.set_title(f"{scenes}\n({len(runs)} seed(s); dots: single seeds)")
    axes[0, 0].set_ylabel("attention density (1 = chance)")
    # below the panels, where it hides no bar
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return fig


def _group_row(run: Mapping[str, Any], scheme: str, group: str | None) -> Mapping[str, Any]:
    row = run["schemes"][scheme]
    return row if group is None else row.get("groups", {}).get(group, {})


@styled
def plot_sweep(points: Mapping[float, Sequence[Mapping[str, Any]]], group: str = "context_bound",
               schemes: Sequence[str] = ("unsupervised", "semi_supervised")) -> "Figure":
    """Attention density on the context and on the object against the co-occurrence
    probability: ``points`` maps a probability to its runs (seeds); one line per scheme
    (mean, error bars: sample standard deviation over the seeds, dots: single seeds)."""
    import matplotlib.pyplot as plt

    if not points:
        raise ValueError("plot_sweep needs at least one probability with runs")
    ps = sorted(points)
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.8), sharey=True)
    for ax, key, what in zip(axes, ("context_density", "object_density"), ("on the context (band)", "on the object")):
        for scheme in schemes:
            vals = [[float(_group_row(r, scheme, group).get(key, np.nan)) for r in points[p]] for p in ps]
            stats = [mean_std(f) if (f := [x for x in v if np.isfinite(x)]) else (np.nan, None) for v in vals]
            mean = [m for m, _ in stats]
            std = [0.0 if sd is None else sd for _, sd in stats]  # no bar for a single seed
            colour = scheme_colour(scheme)
            ax.errorbar(ps, mean, yerr=std, marker="o", capsize=3, color=colour, label=scheme.replace("_", "-"))
            for p, v in zip(ps, vals):
                ax.plot([p] * len(v), v, ".", color=colour, alpha=0.5, ms=4)
        ax.axhline(1.0, color="k", ls="--", lw=1)
        ax.set_xlabel("probability that a bound class's band\nshows its own texture")
        ax.set_title(f"attention density {what},\n{group.replace('_', '-')} classes")
    axes[0].set_ylabel("attention density (1 = chance)")
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


@styled
def plot_effects(summary: Mapping[str, Any], group: str = "context_bound") -> "Figure":
    """The factorial's per-seed effects (:func:`soundloc.experiments.pigeon.factorial.summarize_factorial`)
    on ``group``'s scenes: one panel per measure (band density, object density), one column per
    effect (co-occurrence, pretraining, interaction); dots: single seeds; bar: the mean with its
    95 % confidence interval (:func:`soundloc.stats.mean_ci`); the grey band: the equivalence
    region (±δ, the smallest effect of interest); under each column its test's conclusion."""
    import matplotlib.pyplot as plt

    from soundloc.stats import mean_ci

    tests = summary["tests"][group]
    effects = list(tests)
    measures = list(next(iter(tests.values())))
    delta = float(summary["delta"])
    fig, axes = plt.subplots(1, len(measures), figsize=(MAX_WIDTH, 3.9), sharey=True, layout="constrained")
    rng = np.random.default_rng(0)  # the dots' horizontal jitter only
    for ax, measure in zip(np.atleast_1d(axes), measures):
        ax.axhspan(-delta, delta, color="0.88", zorder=0, label=f"±{delta:g}: smaller than matters")
        ax.axhline(0.0, color="k", lw=1)
        for x, effect in enumerate(effects):
            c = tests[effect][measure]
            d = np.asarray(c["diffs"], dtype=float)
            ax.plot(x + rng.uniform(-0.12, 0.12, d.size), d, ".", color="tab:blue", alpha=0.6, ms=6,
                    label="one seed" if x == 0 else None)
            m, lo, hi = mean_ci(d)
            ax.errorbar([x + 0.25], [m], yerr=[[m - lo], [hi - m]], fmt="o", color="black", capsize=4,
                        label="mean, 95% interval" if x == 0 else None)
        ax.set_xticks(range(len(effects)), [f"{e.replace('cooccurrence', 'co-occurrence')}\n({tests[e][measure]['conclusion']})" for e in effects])
        ax.set_title(f"{measure.replace('_', ' ')}, {group.replace('_', '-')} classes\n"
                     f"({len(d)} seeds; the unsupervised model)")
    np.atleast_1d(axes)[0].set_ylabel("effect (difference of densities)")
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return fig


__all__ = [
    "plot_effects",
    "COLUMN_PX",
    "FIGURE_DPI",
    "MAX_WIDTH",
    "MIN_TEXT_PX",
    "PAGE_WIDTH",
    "STYLE",
    "attention_grid",
    "displayed_text_px",
    "draw_boxes",
    "log_mel_spectrogram",
    "HISTORY_TITLES",
    "LOCALIZATION_VMAX",
    "SCHEME_COLOURS",
    "plot_densities",
    "plot_history",
    "plot_localization",
    "plot_sweep",
    "plot_metric_bars",
    "plot_sound",
    "save_figure",
    "scheme_colour",
    "show_attention",
    "show_image",
    "style_context",
    "styled",
    "upsample_attention",
    "use_style",
]
