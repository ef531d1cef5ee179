"""Tests of ``soundloc localize`` and soundloc.experiments.localize on made images, sounds and
videos: the map is the model's on the same input, audio of another rate and channel count is
converted, a short clip is refused (or looped), a folder of pairs feeds ``soundloc evaluate``,
and the bundled checkpoint works without training."""
from __future__ import annotations

import json
import math
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import CLIP as MIN, tiny_model  # MIN: the shortest clip, 9,326 samples
from soundloc.cli import main
from soundloc.data import SyntheticWorld, WorldConfig, io, write_world
from soundloc.data.ffmpeg import find_ffmpeg
from soundloc.data.layout import read_annotations, read_index, write_id_list
from soundloc.experiments.localize import BUNDLED_CHECKPOINT, load_localizer
from soundloc.models import save_model

RATE = 22050


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tiny_model(0, temperature=0.1)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_model(path, model)
    return path


def made_image(path: Path, height: int = 48, width: int = 80) -> torch.Tensor:
    """A dark frame with a bright square in its upper left quarter."""
    img = torch.full((3, height, width), 0.1)
    img[:, 4:20, 8:30] = torch.tensor([0.9, 0.6, 0.2])[:, None, None]
    io.write_image(path, img)
    return io.read_image(path)


def tone(n: int, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def read_index_ids(root: Path) -> list[str]:
    return [r["id"] for r in read_index(root)]


def annotated_ids(root: Path) -> Path:
    """A list of the ids with boxes (scenes whose source is off screen have none)."""
    return write_id_list(root / "annotated.txt", sorted(read_annotations(root / "annotations.json")))


def model_map(checkpoint: Path, image: Path, wave: torch.Tensor) -> np.ndarray:
    model = load_localizer(checkpoint)
    with torch.no_grad():
        return model(io.read_image(image, 32)[None], wave[None]).attention[0].numpy()


def test_localize_an_image_and_a_sound(tmp_path, checkpoint, capsys) -> None:  # type: ignore[no-untyped-def]
    made_image(tmp_path / "scene.png")
    sf.write(tmp_path / "scene.wav", tone(RATE), RATE)
    out = tmp_path / "out" / "overlay.png"
    assert main(["localize", str(tmp_path / "scene.png"), str(tmp_path / "scene.wav"), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    raw = np.load(out.with_suffix(".npy"))
    expected = model_map(checkpoint, tmp_path / "scene.png", torch.from_numpy(tone(RATE)))
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-7)
    assert raw.shape == (4, 4) and result["grid"] == [4, 4] and raw.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(result["map"], raw, rtol=1e-6)
    row, col = np.unravel_index(np.argmax(expected), expected.shape)
    # the peak cell's centre in the 80x48 input image's pixels
    assert (result["peak"]["row"], result["peak"]["col"]) == (row, col)
    assert result["peak"]["x"] == pytest.approx((col + 0.5) * 80 / 4) and result["peak"]["y"] == pytest.approx((row + 0.5) * 48 / 4)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["overlay.npy", "overlay.png"]


def test_audio_of_another_rate_and_channels_is_converted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 2 * 44100
    left = tone(n, 44100)
    sf.write(tmp_path / "stereo.wav", np.stack([left, 0.5 * left], axis=1), 44100)  # mono mix: 0.75 x tone
    wav = io.read_audio(tmp_path / "stereo.wav", RATE)
    assert wav.shape == (n // 2,) and wav.dtype == torch.float32
    inner = slice(200, n // 2 - 200)  # away from the resampler's edges
    np.testing.assert_allclose(wav.numpy()[inner], 0.75 * tone(n // 2)[inner], atol=2e-3)


def test_short_clip_refused_with_the_minimum_or_looped(tmp_path, checkpoint, capsys) -> None:  # type: ignore[no-untyped-def]
    made_image(tmp_path / "a.png")
    short = tone(MIN - 1000)
    sf.write(tmp_path / "a.wav", short, RATE)
    args = ["localize", str(tmp_path / "a.png"), str(tmp_path / "a.wav"), "--checkpoint", str(checkpoint),
            "--out", str(tmp_path / "o.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"minimum of {MIN} samples" in err and "--pad" in err and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()
    assert main([*args, "--pad"]) == 0
    looped = torch.from_numpy(np.tile(short, 2)[:MIN])
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), model_map(checkpoint, tmp_path / "a.png", looped),
                               rtol=1e-5, atol=1e-7)


def test_bad_input_is_one_line(tmp_path, checkpoint, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    sf.write(tmp_path / "a.wav", tone(RATE), RATE)
    cases = [
        (["localize", str(tmp_path / "broken.png"), str(tmp_path / "a.wav"), "--checkpoint", str(checkpoint)], "broken.png: cannot read image"),
        (["localize", str(tmp_path / "a.wav"), "--checkpoint", str(tmp_path / "none.pt")], "none.pt"),
        (["localize", str(tmp_path / "nothing.png"), str(tmp_path / "a.wav")], "nothing.png: no such file"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # a checkpoint that is not one (a text file named .jpg; an image): named, and said why
    made_image(tmp_path / "a.png")
    (tmp_path / "text.jpg").write_text("some text\nline two")
    for name in ("text.jpg", "a.png"):
        assert main(["localize", str(tmp_path / "a.png"), str(tmp_path / "a.wav"), "--checkpoint", str(tmp_path / name),
                     "--out", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err
        assert err == f"soundloc localize: error: model file '{tmp_path / name}' is not a file written by torch.save\n"
    # an overlay under a path whose folder is a file
    (tmp_path / "FILE").write_text("a file")
    assert main(["localize", str(tmp_path / "a.png"), str(tmp_path / "a.wav"), "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "FILE" / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err == f"soundloc localize: error: --out {tmp_path / 'FILE' / 'x.png'}: {tmp_path / 'FILE'} is a file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE", "a.png", "a.wav", "broken.png", "text.jpg"]


def test_a_folder_of_pairs_feeds_evaluate(tmp_path, checkpoint, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    assert main(["synth", "--out", str(root), "--n", "24", "--test", "8", "--image-size", "32", "--clip-seconds", "0.5",
                 "--quiet"]) == 0
    unannotated = sorted(set(read_index_ids(root)) - set(read_annotations(root / "annotations.json")))
    assert unannotated == ["syn000007"]  # an off-screen sound: no box to score
    out = tmp_path / "maps"
    capsys.readouterr()
    assert main(["localize", str(root), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    ids = [f"syn{i:06d}" for i in range(24)]
    with np.load(out / "maps.npz") as z:
        assert sorted(z.files) == ids
        np.testing.assert_array_equal(z[ids[2]], np.load(out / f"{ids[2]}.npy"))
    assert all((out / f"{i}.png").is_file() for i in ids)
    # the command it prints scores the annotated pairs, and runs as printed
    err = capsys.readouterr().err.strip()
    assert err.startswith("24 localized, 0 skipped;") and "1 without annotation" in err and err.count("\n") == 0
    command = shlex.split(err[err.index("soundloc evaluate"):].rstrip(")"))
    assert command[-2:] == ["--ids", str(out / "annotated_ids.txt")]
    assert (out / "annotated_ids.txt").read_text().split() == [i for i in ids if i not in unannotated]
    assert main(command[1:]) == 0
    assert "pairs: 23\n" in capsys.readouterr().out

    # a loose folder: image + sound of the same name; an unreadable pair is skipped with a warning
    loose = tmp_path / "loose"
    loose.mkdir()
    made_image(loose / "one.png")
    sf.write(loose / "one.flac", tone(RATE, 16000), 16000)
    (loose / "two.jpg").write_bytes(b"garbage")
    sf.write(loose / "two.wav", tone(RATE), RATE)
    assert main(["localize", str(loose), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "l")]) == 0
    err = capsys.readouterr().err
    assert "skipped two" in err and "1 localized, 1 skipped" in err
    with np.load(tmp_path / "l" / "maps.npz") as z:
        assert z.files == ["one"]


def test_a_video_gives_its_middle_frame_and_its_sound(tmp_path, checkpoint, capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        ffmpeg = find_ffmpeg()
    except FileNotFoundError:  # pragma: no cover - the venv ships imageio-ffmpeg
        pytest.skip("no ffmpeg")
    video = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "2", "-c:a", "aac",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(video)], check=True)
    out = tmp_path / "v.png"
    assert main(["localize", str(video), "--checkpoint", str(checkpoint), "--out", str(out), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    col, row = result["peak"]["col"], result["peak"]["row"]
    assert result["peak"]["x"] == pytest.approx((col + 0.5) * 64 / 4) and result["peak"]["y"] == pytest.approx((row + 0.5) * 48 / 4)
    assert np.load(out.with_suffix(".npy")).shape == (4, 4)
    # a sound file after the video replaces its sound
    sf.write(tmp_path / "other.wav", tone(RATE, freq=2000.0), RATE)
    assert main(["localize", str(video), str(tmp_path / "other.wav"), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0


def test_the_bundled_checkpoint_localizes_without_training(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = load_localizer(BUNDLED_CHECKPOINT)
    assert BUNDLED_CHECKPOINT.stat().st_size < 5e6
    assert model.config.visual_backbone == "small" and model.config.image_size == 64
    world = SyntheticWorld(WorldConfig(), seed=11)  # a world the bundled model never saw
    root = tmp_path / "w"
    write_world(world, root, n=40, progress=False)
    assert main(["localize", str(root), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--heatmaps", str(tmp_path / "m" / "maps.npz"), "--annotations",
                 str(root / "annotations.json"), "--ids", str(annotated_ids(root)), "--random-grid", "8", "--json", str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    # a trained localizer: above the whole-image prediction and random maps on unseen scenes
    assert report["success"] > report["baselines"]["whole image"]["success"], report
    assert report["auc"] > report["baselines"]["random"]["auc"] and math.isfinite(report["auc"])


def test_the_overlay_and_json_read_the_map_against_uniform(tmp_path, checkpoint, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import soundloc.viz as viz

    made_image(tmp_path / "scene.png")
    sf.write(tmp_path / "scene.wav", tone(RATE), RATE)  # amplitude 0.5: peak -6.0 dBFS, RMS -9.0 dBFS
    figures = []
    save = viz.save_figure
    monkeypatch.setattr(viz, "save_figure", lambda fig, path, **kw: (figures.append(fig), save(fig, path, **kw))[1])
    out = tmp_path / "o.png"
    argv = ["localize", str(tmp_path / "scene.png"), str(tmp_path / "scene.wav"), "--checkpoint", str(checkpoint),
            "--out", str(out), "--format", "json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result, alpha = json.loads(captured.out), np.load(out.with_suffix(".npy")).astype(np.float64)
    assert captured.err == ""  # a sound that is there: no warning
    assert result["sound"] == str(tmp_path / "scene.wav") and result["checkpoint"] == str(checkpoint)
    assert result["peak"]["vs_uniform"] == pytest.approx(alpha.max() * 16, rel=1e-6) and result["uniform"] == 1 / 16
    assert result["entropy"] == pytest.approx(-(alpha * np.log(alpha)).sum(), rel=1e-6)
    assert result["entropy_of_uniform"] == pytest.approx(math.log(16)) and result["entropy"] < math.log(16)
    silence = model_map(checkpoint, tmp_path / "scene.png", torch.zeros(RATE))
    assert result["change_from_silence"] == pytest.approx(0.5 * np.abs(alpha - silence).sum(), abs=1e-6)
    assert result["sound_level"]["peak_dbfs"] == pytest.approx(20 * math.log10(0.5), abs=1e-3)
    assert result["sound_level"]["rms_dbfs"] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)
    assert result["near_silent"] is False
    # the figure: the image at a useful size, the map in multiples of uniform on a scale from 0
    from PIL import Image

    assert Image.open(out).size[0] >= 720  # the image alone is drawn 6 inches wide at 120 dpi
    (fig,) = figures
    ax, bar = fig.axes
    shown = np.asarray(ax.images[1].get_array())
    assert shown.shape == (48, 80) and shown.max() <= alpha.max() * 16 + 1e-5  # bilinear: test_viz has the values
    norm = ax.images[1].norm
    assert norm.vmin == 0.0 and norm.vmax == pytest.approx(max(4.0, result["peak"]["vs_uniform"]), rel=1e-6)
    assert "uniform" in [t.get_text() for t in bar.get_yticklabels()]
    title = "\n".join(t.get_text() for t in fig.texts)
    assert "scene.png" in title and "scene.wav" in title and str(checkpoint) in title

    # --vmax: one scale for every figure
    assert main([*argv, "--vmax", "8"]) == 0
    assert figures[-1].axes[0].images[1].norm.vmax == 8.0
    capsys.readouterr()
    assert main([*argv[:-2], "--out", str(tmp_path / "v.png"), "--vmax", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err == "soundloc localize: error: --vmax is a multiple of the uniform level and must be > 1, got 0.5\n"
    assert not (tmp_path / "v.png").exists() and not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize("scale, level", [(0.0, "silent"), (0.004, "near-silent, loudest sample -48 dBFS")])
def test_a_silent_sound_is_localized_with_a_warning(tmp_path, checkpoint, capsys, scale: float, level: str) -> None:  # type: ignore[no-untyped-def]
    made_image(tmp_path / "scene.png")
    sf.write(tmp_path / "quiet.wav", scale * 2 * tone(RATE), RATE)  # peak 0.004: -48 dBFS; 0: silence
    out = tmp_path / "o.png"
    assert main(["localize", str(tmp_path / "scene.png"), str(tmp_path / "quiet.wav"), "--checkpoint", str(checkpoint),
                 "--out", str(out), "--format", "json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert captured.err == (f"soundloc localize: warning: scene ({tmp_path / 'quiet.wav'}): the sound is {level} "
                            "(below -40 dBFS): the map of silence is not a localization\n")
    assert result["near_silent"] is True and out.is_file()
    assert (result["sound_level"]["peak_dbfs"] is None) == (scale == 0.0)
