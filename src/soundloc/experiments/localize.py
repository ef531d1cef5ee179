"""Localize the sound of a user's own clip: an image (or a video's middle frame) and a sound in,
the attention map out (Senocak et al., CVPR 2018, Fig. 1 and Sec. 3.1).

:func:`load_localizer` reads a trained model (a :func:`soundloc.models.save_model` file such as a
run's ``best.pt``, or a resumable ``last.pt``); :func:`read_input` turns an image and an audio
file of any rate and channel count, or a video, into the model's input; :func:`localize` gives
the attention map α on the model's grid, its peak (also as a multiple of the uniform mass
1 / (h w)), its entropy, how far the sound moved it from the map of silence, and the sound's
level; :func:`write_outputs` writes the overlay PNG (:func:`soundloc.viz.plot_localization`) and
the raw map (``.npy``). A sound whose loudest sample is below :data:`NEAR_SILENT_DBFS` is
flagged ``near_silent``: the map the model gives to silence is not a localization. A video goes
through :func:`soundloc.data.prepare.prepare_one`, the path the data scripts prepare
Flickr-SoundNet with (middle frame, mono audio at the model's rate). :func:`find_pairs` lists the pairs of a folder for batch inference; their maps, saved
as one ``.npz`` keyed by id, feed ``soundloc evaluate``.

The paper's "same image, other sound" (Sec. 5, Fig. 7): :func:`attention_table` gives the maps of
every image with every sound (the book's interactive chapter draws it as a grid, rows images,
columns sounds), :func:`mix_sounds` blends two clips, and :func:`class_mask` marks where the
objects of one class stand in a synthetic scene, to measure where the attention went.

The sound network has a shortest input (SoundNet-8's conv8 has no padding: 209,374 samples, 9.5
s at 22,050 Hz; the CPU variant's is shorter): a shorter clip is refused, naming the minimum,
unless ``pad`` loops it up to that length (:func:`soundloc.models.pad_waveform`).
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundloc import viz
from soundloc.data import io
from soundloc.data.ffmpeg import find_ffmpeg
from soundloc.data.layout import read_index
from soundloc.data.prepare import PrepareConfig, prepare_one
from soundloc.models import ModelConfig, SoundLocalizer, load_model, min_samples_for, pad_waveform
from soundloc.train import checkpoint_model, read_checkpoint
from soundloc.utils.files import atomic_path, json_safe

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv", ".mpg", ".mpeg")

#: The checkpoint shipped with the library (see ``assets/README.md`` for how it was made).
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "synthetic_cpu.pt"
#: A sound whose loudest sample is below this level (dB relative to full scale, 1.0) is
#: near-silent: 1 % of full scale, 40 dB under a clip that peaks at full scale. Every digital
#: silence is below it.
NEAR_SILENT_DBFS = -40.0


def load_localizer(path: str | os.PathLike[str]) -> SoundLocalizer:
    """A trained model from a model file (:func:`soundloc.models.save_model`, e.g. a run's
    ``best.pt``) or a training checkpoint (:func:`soundloc.train.save_checkpoint`, ``last.pt``),
    in eval mode; ``ValueError`` naming the file when it is neither."""
    try:
        model = load_model(path)
    except ValueError as model_error:
        try:
            state = read_checkpoint(path)
        except ValueError:
            raise model_error from None
        model = checkpoint_model(state)
    return model.eval()


@dataclass
class Pair:
    """One input: its name (the output files' stem), the image as read ``[3, H, W]`` (for the
    overlay), the image at the model's size (resized as the training data is), the mono
    waveform at the model's rate, and where they came from (``source`` the image or video,
    ``sound`` the audio file, or the video for its own sound)."""

    name: str
    image: torch.Tensor
    model_image: torch.Tensor
    waveform: torch.Tensor
    source: str
    sound: str = ""


def fit_to_sound_net(waveform: torch.Tensor, config: ModelConfig, pad: bool, where: str) -> torch.Tensor:
    """``waveform`` unchanged when the sound network takes it, looped to the network's minimum
    with ``pad``, else ``ValueError`` naming the minimum."""
    minimum = min_samples_for(config.sound_variant)
    n, rate = int(waveform.shape[-1]), config.sample_rate
    if n >= minimum:
        return waveform
    if not pad:
        raise ValueError(f"{where}: the clip has {n} samples ({n / rate:.2f} s at {rate} Hz), shorter than the "
                         f"sound network's minimum of {minimum} samples ({minimum / rate:.2f} s): "
                         "give a longer clip or pass --pad to loop it")
    return pad_waveform(waveform, minimum, mode="repeat")


def read_video(video: str | os.PathLike[str], sample_rate: int, seconds: float, size: int,
               ffmpeg: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A video's middle frame ``[3, H, W]``, the same at ``size`` x ``size``, and its first
    ``seconds`` of sound (mono, at ``sample_rate``), extracted by the data scripts'
    :func:`~soundloc.data.prepare.prepare_one`."""
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"{video}: video file not found")
    cfg = PrepareConfig(seconds=seconds, sample_rate=sample_rate, size=None, frames=1, workers=1,
                        progress=False, overwrite=True, min_coverage=0.0)
    with tempfile.TemporaryDirectory(prefix="soundloc-localize-") as tmp:
        status, reason = prepare_one(video, tmp, cfg, find_ffmpeg(ffmpeg))
        if status != "prepared":
            raise ValueError(f"{video}: {reason}")
        frame = next(Path(tmp).glob("frames/*.jpg"))
        wav = io.read_wav(next(Path(tmp).glob("audio/*.wav")), sample_rate=sample_rate)
        return io.read_image(frame), io.read_image(frame, size), wav


def read_input(visual: str | os.PathLike[str], audio: str | os.PathLike[str] | None, config: ModelConfig,
               pad: bool = False, seconds: float = 20.0, ffmpeg: str | None = None) -> Pair:
    """An image and an audio file, or a video (its own sound unless ``audio`` is given), as a
    :class:`Pair` for a model of ``config``; errors name the file."""
    visual = Path(visual)
    if visual.suffix.lower() in VIDEO_SUFFIXES:
        image, model_image, waveform = read_video(visual, config.sample_rate, seconds, config.image_size, ffmpeg)
        if audio is not None:
            waveform = io.read_audio(audio, config.sample_rate)
    else:
        if audio is None:
            raise ValueError(f"{visual}: an image needs an audio file beside it (or give a video)")
        image, model_image = io.read_image(visual), io.read_image(visual, config.image_size)
        waveform = io.read_audio(audio, config.sample_rate)
    sound = os.fspath(audio if audio is not None else visual)
    waveform = fit_to_sound_net(waveform, config, pad, sound)
    return Pair(name=visual.stem, image=image, model_image=model_image, waveform=waveform, source=os.fspath(visual),
                sound=sound)


def find_pairs(folder: str | os.PathLike[str]) -> list[tuple[str, Path, Path | None]]:
    """The pairs of a folder as ``(id, visual, audio)``: a prepared folder's ``index.csv`` rows
    (ids as in its annotations), else every image with an audio file of the same stem and every
    video (its own sound). ``ValueError`` when there is none."""
    folder = Path(folder)
    if (folder / "index.csv").is_file():
        return [(r["id"], folder / r["frame"], folder / r["audio"]) for r in read_index(folder)]
    files = sorted(p for p in folder.iterdir() if p.is_file())
    audio = {p.stem: p for p in files if p.suffix.lower() in AUDIO_SUFFIXES}
    pairs: list[tuple[str, Path, Path | None]] = []
    for p in files:
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in audio:
            pairs.append((p.stem, p, audio[p.stem]))
        elif p.suffix.lower() in VIDEO_SUFFIXES:
            pairs.append((p.stem, p, None))
    if not pairs:
        raise ValueError(f"{folder}: no pairs (an image with an audio file of the same name, or a video)")
    return pairs


def level_dbfs(waveform: torch.Tensor) -> tuple[float, float]:
    """``(peak, rms)`` of a waveform in dB relative to full scale (1.0); ``-inf`` for silence."""
    x = waveform.detach().double()
    peak, rms = float(x.abs().max()), float(x.pow(2).mean().sqrt())
    return tuple(20.0 * math.log10(v) if v > 0 else -math.inf for v in (peak, rms))  # type: ignore[return-value]


def entropy(attention: np.ndarray) -> float:
    """The entropy of a map that sums to 1, in nats: log(h w) for the uniform map, 0 for a
    map on one cell."""
    p = attention.astype(np.float64).ravel()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@torch.no_grad()
def localize(model: SoundLocalizer, pair: Pair) -> dict[str, Any]:
    """The model's attention map α ``[h, w]`` (float32 NumPy, sums to 1) on ``pair`` and what
    reads it: the peak (grid cell ``(row, col)``, its centre in the input image's pixels
    ``(x, y)``, its mass and that mass as a multiple of the uniform 1 / (h w)), the map's entropy
    (nats; ``entropy_of_uniform`` = log(h w) is the largest), ``change_from_silence`` (the total
    variation distance to the map the model gives the image with a silent clip: 0 when the sound
    does not move the map) and the sound's level, ``near_silent`` below :data:`NEAR_SILENT_DBFS`."""
    sound = pair.waveform[None].float()
    attention, silence = (model(pair.model_image[None], s).attention[0].float().cpu().numpy()
                          for s in (sound, torch.zeros_like(sound)))
    h, w = attention.shape
    row, col = divmod(int(np.argmax(attention)), w)
    height, width = pair.image.shape[1:]
    peak_db, rms_db = level_dbfs(pair.waveform)
    mass = float(attention[row, col])
    return {"name": pair.name, "source": pair.source, "sound": pair.sound, "grid": [h, w], "attention": attention,
            "peak": {"row": row, "col": col, "x": (col + 0.5) * width / w, "y": (row + 0.5) * height / h,
                     "mass": mass, "vs_uniform": mass * h * w},
            "uniform": 1.0 / (h * w), "entropy": entropy(attention), "entropy_of_uniform": math.log(h * w),
            "change_from_silence": float(0.5 * np.abs(attention.astype(np.float64) - silence).sum()),
            "sound_level": {"peak_dbfs": peak_db, "rms_dbfs": rms_db}, "near_silent": peak_db < NEAR_SILENT_DBFS}


def mix_sounds(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 - weight) * a + weight * b``: two clips ``[T]`` of the same length blended
    (``weight`` 0 is ``a`` alone, 1 is ``b`` alone)."""
    if not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    if a.shape != b.shape:
        raise ValueError(f"the clips must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (1.0 - float(weight)) * a + float(weight) * b


@torch.no_grad()
def attention_table(model: SoundLocalizer, images: torch.Tensor, sounds: torch.Tensor) -> torch.Tensor:
    """The attention map of every image with every sound: ``[n_images, n_sounds, h, w]``.

    ``images``: ``[N, 3, H, W]`` at the model's input size; ``sounds``: ``[S, T]`` waveforms at
    its rate (long enough for its sound network). Each image's visual features are computed
    once and shared by the ``S`` sounds (:meth:`SoundLocalizer.score_sounds`); the model is put
    in eval mode.
    """
    if images.dim() != 4 or sounds.dim() != 2:
        raise ValueError(f"images [N, 3, H, W] and sounds [S, T] needed, got {tuple(images.shape)} and {tuple(sounds.shape)}")
    model.eval()
    sounds = sounds.float()
    return torch.stack([model.score_sounds(image, sounds).float().cpu() for image in images])


def class_mask(scene: Any, k: int) -> torch.Tensor:
    """``[H, W]`` float mask (0/1) of where objects of class ``k`` stand in a synthetic
    :class:`~soundloc.data.synthetic.Scene`: the sounding object's box when it is in view and of
    class ``k``, and the boxes of the silent objects of class ``k`` (all zeros when none)."""
    h, w = scene.image.shape[-2:]
    mask = torch.zeros(h, w)
    boxes = [b for c, b in zip(scene.distractor_labels, scene.distractor_boxes) if c == k]
    if scene.kind == "object" and scene.label == k and scene.box is not None:
        boxes.append(scene.box)
    for x1, y1, x2, y2 in boxes:
        mask[max(0, int(y1)):int(y2), max(0, int(x1)):int(x2)] = 1.0
    return mask


def overlay_title(result: dict[str, Any], checkpoint: str) -> str:
    """The overlay's title: the image, the sound (when it is another file) and the checkpoint."""
    image, sound = Path(result["source"]).name, Path(result["sound"]).name if result.get("sound") else ""
    what = image if not sound or sound == image else f"{image}  +  sound {sound}"
    return f"{what}\nmodel: {checkpoint}"


def silence_warning(result: dict[str, Any]) -> str | None:
    """What to say of a near-silent sound (``None`` for another)."""
    if not result.get("near_silent"):
        return None
    peak = result["sound_level"]["peak_dbfs"]
    level = "silent" if peak == -math.inf else f"near-silent, loudest sample {peak:.0f} dBFS"
    return f"the sound is {level} (below {NEAR_SILENT_DBFS:.0f} dBFS): the map of silence is not a localization"


def write_outputs(result: dict[str, Any], pair: Pair, overlay: str | os.PathLike[str], checkpoint: str = "",
                  vmax: float | None = None) -> dict[str, str]:
    """The overlay PNG at ``overlay`` (:func:`soundloc.viz.plot_localization`, titled with the
    image, the sound and ``checkpoint``; ``vmax`` the top of its scale as a multiple of
    uniform) and the raw map beside it (same stem, ``.npy``), both written atomically; returns
    their paths."""
    import matplotlib.pyplot as plt

    overlay = Path(overlay)
    raw = overlay.with_suffix(".npy")
    with atomic_path(raw) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, result["attention"])
    fig = viz.plot_localization(pair.image, result["attention"], title=overlay_title(result, checkpoint), vmax=vmax,
                                peak=(result["peak"]["x"], result["peak"]["y"]), warning=silence_warning(result))
    viz.save_figure(fig, overlay, close=True)
    plt.close("all")
    return {"overlay": os.fspath(overlay), "map": os.fspath(raw)}


def write_maps(path: str | os.PathLike[str], maps: dict[str, np.ndarray]) -> Path:
    """Maps keyed by id as one ``.npz`` (what ``soundloc evaluate --heatmaps`` reads), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **maps)
    return path


def as_json(result: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """A result as strict JSON: the map as nested lists, everything :func:`localize` measured
    (the level of a silent clip, -inf dBFS, becomes null) and the files."""
    return json_safe({**{k: v for k, v in result.items() if k != "attention"}, "map": result["attention"].tolist(),
                      "files": files})


__all__ = [
    "BUNDLED_CHECKPOINT",
    "NEAR_SILENT_DBFS",
    "Pair",
    "as_json",
    "attention_table",
    "class_mask",
    "entropy",
    "find_pairs",
    "fit_to_sound_net",
    "level_dbfs",
    "load_localizer",
    "localize",
    "mix_sounds",
    "overlay_title",
    "read_input",
    "read_video",
    "silence_warning",
    "write_maps",
    "write_outputs",
]
