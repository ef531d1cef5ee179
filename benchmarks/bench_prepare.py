#!/usr/bin/env python3
"""Time the real-data pipeline per video on generated videos, and extrapolate to 1k videos.

Generates N videos with ffmpeg's test sources (testsrc2 picture + a sine tone; H.264 + AAC,
stereo 44.1 kHz, like a phone video), serves them from a local HTTP server on 127.0.0.1, and
times the three steps a user runs on Flickr-SoundNet:

1. download (soundloc.data.download, from the local server: this measures the tool's own
   overhead, not the internet; real downloads are bound by the network);
2. prepare (soundloc.data.prepare: middle frame at 256×256 + 20 s mono 22,050 Hz WAV);
3. cache (soundloc.data.cache: 224 px uint8 frames + 20 s int16 audio in memory maps).

Prints seconds per video and the extrapolation to 1,000 videos, and disk use per 1,000.
Nothing here is random (the test sources are deterministic), so there is no seed.
Numbers depend on the machine (say which when quoting them) and on the videos: real Flickr
videos vary in length, resolution and codec.

    python benchmarks/bench_prepare.py --n 20 --workers 2
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_videos(ffmpeg: str, out: Path, n: int, seconds: float, size: str, fps: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if (out / f"{10_000_000 + i}.mp4").is_file():  # kept from an earlier --keep run
            continue
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency={220 + 20 * i}:sample_rate=44100:duration={seconds}",
             "-ac", "2", "-c:a", "aac", "-b:a", "128k", "-c:v", "libx264", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y", str(out / f"{10_000_000 + i}.mp4")],
            check=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="videos to generate (default 20)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each video (default 20)")
    ap.add_argument("--video-size", default="640x360", help="picture size (default 640x360)")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--workers", type=int, default=2, help="prepare/cache workers (default 2)")
    ap.add_argument("--download-workers", type=int, default=8)
    ap.add_argument("--ffmpeg", default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folder here instead of a temporary one")
    args = ap.parse_args()

    from soundloc.data.cache import CacheConfig, build_cache
    from soundloc.data.download import DownloadConfig, download_all, parse_items
    from soundloc.data.ffmpeg import find_ffmpeg
    from soundloc.data.prepare import PrepareConfig, prepare_videos

    ffmpeg = find_ffmpeg(args.ffmpeg)
    work = args.keep or Path(tempfile.mkdtemp(prefix="soundloc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src, dl, prepared = work / "source", work / "videos", work / "prepared"
    for d in (dl, prepared):
        shutil.rmtree(d, ignore_errors=True)
    try:
        t0 = time.perf_counter()
        make_videos(ffmpeg, src, args.n, args.seconds, args.video_size, args.fps)
        t_gen = time.perf_counter() - t0

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

        handler = functools.partial(Quiet, directory=str(src))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        items = parse_items(sorted(p.stem for p in src.glob("*.mp4")),
                            url_template=f"http://127.0.0.1:{httpd.server_address[1]}/{{id}}.mp4")
        t0 = time.perf_counter()
        rep = download_all(items, dl, DownloadConfig(workers=args.download_workers, progress=False))
        t_dl = time.perf_counter() - t0
        httpd.shutdown()
        httpd.server_close()
        assert not rep.failed, rep.failed

        t0 = time.perf_counter()
        prep = prepare_videos(dl, prepared, PrepareConfig(workers=args.workers, ffmpeg=ffmpeg, progress=False))
        t_prep = time.perf_counter() - t0
        assert not prep.failed, prep.failed

        t0 = time.perf_counter()
        cache = build_cache(prepared, cfg=CacheConfig(image_size=224, clip_seconds=20.0), workers=args.workers, progress=False)
        t_cache = time.perf_counter() - t0

        n = args.n
        print(f"machine: {os.cpu_count()} CPU cores; ffmpeg: {ffmpeg}")
        print(f"videos: {n} generated, {args.seconds:g} s, {args.video_size} @ {args.fps} fps, H.264 + AAC stereo 44.1 kHz "
              f"(generation took {t_gen:.1f} s, not counted)")
        print(f"{'step':<34}{'s/video':>10}{'per 1k videos':>16}")
        for name, t in [("download (local server, 8 threads)", t_dl),
                        (f"prepare (ffmpeg, {args.workers} workers)", t_prep),
                        (f"cache 224 px + 20 s ({args.workers} threads)", t_cache)]:
            print(f"{name:<34}{t / n:>10.3f}{t / n * 1000 / 60:>12.1f} min")
        per_1k_mb = 1000 / n / 1e6  # bytes of n videos -> MB per 1,000 videos
        print(f"disk per 1k videos: videos {folder_bytes(dl) * per_1k_mb:.0f} MB, prepared "
              f"{(folder_bytes(prepared) - folder_bytes(cache)) * per_1k_mb:.0f} MB (frames + 20 s WAVs), cache {folder_bytes(cache) * per_1k_mb:.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
