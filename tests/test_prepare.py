"""prepare_flickr on tiny videos that the test makes with ffmpeg's generated sources."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from soundloc.data.ffmpeg import FFmpegError, find_ffmpeg, parse_probe_output, probe
from soundloc.data.layout import read_failures, read_index
from soundloc.data.prepare import PrepareConfig, frame_times, prepare_videos

try:
    FFMPEG = find_ffmpeg()
except FileNotFoundError:  # pragma: no cover - the venv ships imageio-ffmpeg
    FFMPEG = None
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg available")


def make_video(path: Path, seconds: float = 2.0, audio: str | None = "sine=frequency=440:sample_rate=44100",
               channels: int = 2, faststart: bool = True) -> Path:
    """testsrc picture (64×48, 10 fps) with an optional generated audio source, H.264 + AAC."""
    args = [FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"{audio}:duration={seconds}" if "anullsrc" not in audio else audio,
                 "-ac", str(channels), "-c:a", "aac", "-t", str(seconds)]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if faststart:
        args += ["-movflags", "+faststart"]
    subprocess.run([*args, "-y", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    make_video(d / "tone.mp4", seconds=2.0)
    make_video(d / "noaudio.mp4", audio=None)
    make_video(d / "silent.mp4", audio="anullsrc=channel_layout=stereo:sample_rate=44100")
    full = make_video(d / "full3s.mp4", seconds=3.0).read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])  # moov kept in front: header says 3 s
    (d / "cut80.mp4").write_bytes(full[: len(full) * 8 // 10])  # middle frame present, audio ends early
    make_video(d / "tail.mp4", seconds=3.0, faststart=False)
    data = (d / "tail.mp4").read_bytes()
    (d / "nomoov.mp4").write_bytes(data[: len(data) // 2])  # moov was at the end: cut away
    (d / "tail.mp4").unlink()
    (d / "full3s.mp4").unlink()
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.txt").write_text("not a video")
    return d


def test_find_ffmpeg_explicit_path_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        find_ffmpeg(tmp_path / "nope")
    assert find_ffmpeg(FFMPEG) == FFMPEG


def test_parse_probe_output_by_hand() -> None:
    text = (
        "Input #0, mov,mp4, from 'x.mp4':\n  Duration: 00:01:02.50, start: 0.000000, bitrate: 148 kb/s\n"
        "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p(progressive), 640x360 [SAR 1:1 DAR 16:9], 25 fps\n"
        "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s\n"
        "At least one output file must be specified\n"
    )
    info = parse_probe_output(text)
    assert info.duration == pytest.approx(62.5)
    assert (info.has_video, info.has_audio, info.width, info.height) == (True, True, 640, 360)
    assert (info.audio_rate, info.audio_channels) == (48000, "stereo")
    with pytest.raises(ValueError, match="Invalid data"):
        parse_probe_output("[in#0] moov atom not found\nError opening input files: Invalid data found when processing input\n")


def test_probe_generated_files(videos: Path) -> None:
    info = probe(videos / "tone.mp4", FFMPEG)
    assert info.has_video and info.has_audio and info.audio_rate == 44100 and info.audio_channels == "stereo"
    assert info.duration == pytest.approx(2.0, abs=0.1) and (info.width, info.height) == (64, 48)
    assert not probe(videos / "noaudio.mp4", FFMPEG).has_audio
    with pytest.raises(FFmpegError, match="nomoov.mp4"):
        probe(videos / "nomoov.mp4", FFMPEG)


def test_frame_times() -> None:
    assert frame_times(10.0, 1) == [5.0]
    assert frame_times(9.0, 3) == [1.5, 4.5, 7.5]


def test_prepare_videos_outputs_failures_and_resume(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    cfg = PrepareConfig(frames=3, workers=2, progress=False, ffmpeg=FFMPEG)
    report = prepare_videos(videos, out, cfg)
    assert report.prepared == ["tone"]
    reasons = dict(report.failed)
    assert set(reasons) == {"noaudio", "silent", "truncated", "cut80", "nomoov", "empty"}
    assert reasons["noaudio"] == "no audio stream"
    assert reasons["empty"] == "zero-length file"
    assert "silent" in reasons["silent"]
    assert "corrupt" in reasons["nomoov"]
    for key, upper in [("truncated", 2.0), ("cut80", 2.7)]:  # 50 % and 80 % of a 3 s file's bytes
        m = re.match(r"audio stops at ([0-9.]+) s of an expected 3.00 s \(truncated", reasons[key])
        assert m and 0 < float(m.group(1)) < upper, reasons[key]
    assert dict(read_failures(out / "failures.csv")) == reasons

    rows = read_index(out)
    assert rows == [{"id": "tone", "frame": "frames/tone.jpg", "audio": "audio/tone.wav"}]
    # audio: mono 22,050 Hz, 2 s, 16-bit, and still a 440 Hz tone
    data, rate = sf.read(out / "audio/tone.wav", dtype="float32")
    assert rate == 22_050 and data.ndim == 1 and sf.info(out / "audio/tone.wav").subtype == "PCM_16"
    assert abs(len(data) - 2 * 22_050) <= 0.01 * 2 * 22_050
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    assert np.fft.rfftfreq(len(data), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=2)
    # frames: 256×256 RGB; <id>.jpg is the middle frame, the same as frame 1 of 3
    imgs = {p.name: np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in (out / "frames").iterdir()}
    assert set(imgs) == {"tone.jpg", "tone_0.jpg", "tone_1.jpg", "tone_2.jpg"}
    assert all(im.shape == (256, 256, 3) for im in imgs.values())
    assert np.abs(imgs["tone.jpg"] - imgs["tone_1.jpg"]).max() <= 2
    assert np.abs(imgs["tone_0.jpg"] - imgs["tone_1.jpg"]).mean() > 5  # testsrc moves: different times
    # no temporary files left behind
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]

    # a second run skips the finished item and leaves its files untouched
    mtime = (out / "audio/tone.wav").stat().st_mtime_ns
    again = prepare_videos(videos, out, cfg)
    assert again.skipped == ["tone"] and again.prepared == []
    assert (out / "audio/tone.wav").stat().st_mtime_ns == mtime
    assert read_index(out) == rows


def test_seconds_option_and_crop(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    cfg = PrepareConfig(seconds=0.5, size=32, resize="crop", sample_rate=16_000, progress=False, ffmpeg=FFMPEG)
    report = prepare_videos([videos / "tone.mp4"], out, cfg)
    assert report.prepared == ["tone"]
    data, rate = sf.read(out / "audio/tone.wav")
    assert rate == 16_000 and len(data) == 8_000
    assert Image.open(out / "frames/tone.jpg").size == (32, 32)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="resize"):
        PrepareConfig(resize="squash")
    with pytest.raises(ValueError, match="frames"):
        PrepareConfig(frames=0)
    with pytest.raises(ValueError, match=r"share the id\(s\) \['clip'\]"):
        prepare_videos(["/x/clip.mp4", "/y/clip.webm"], "/tmp/x", PrepareConfig(progress=False, ffmpeg=FFMPEG))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_videos("/nowhere/videos", "/tmp/x", PrepareConfig(progress=False, ffmpeg=FFMPEG))


def test_prepare_cli(videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundloc.cli import main

    single = tmp_path / "in"
    single.mkdir()
    (single / "tone.mp4").write_bytes((videos / "tone.mp4").read_bytes())
    (single / "empty.mp4").write_bytes(b"")
    rc = main(["data", "prepare", "--videos", str(single), "--out", str(tmp_path / "out"), "--ffmpeg", FFMPEG,
               "--size", "64", "--seconds", "1", "--no-progress"])
    assert rc == 0 and "1 prepared" in capsys.readouterr().out
    assert [r["id"] for r in read_index(tmp_path / "out")] == ["tone"]
    assert Image.open(tmp_path / "out/frames/tone.jpg").size == (64, 64)
