"""The repository's committed results, wherever a chapter runs: from the checkout it is in, or
(in Colab) from the project's archive on GitHub, downloaded once."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from soundloc.utils.files import atomic_open


#: Where the project lives; committed results are fetched from here where no clone is at hand.
REPOSITORY_URL = "https://github.com/soundloc/soundloc"


def repository_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The root of a soundloc checkout: the first folder holding ``_config.yml`` and
    ``src/soundloc`` above ``start`` (default: the working directory) or above this installed
    file (an editable install), or ``None``."""
    candidates = [Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "_config.yml").is_file() and (folder / "src" / "soundloc").is_dir():
                return folder
    return None


def committed_path(relative: str, fetch: bool | None = None, archive_url: str | None = None,
                   cache: str | os.PathLike[str] | None = None) -> Path:
    """A committed file or folder of the repository (e.g. ``"benchmarks/pigeon/smoke"``),
    wherever the caller runs: from the checkout it is in (any working directory, e.g.
    papermill from the root or Jupyter from ``chapters/``), else, with ``fetch`` (default: in
    Google Colab), from the project's archive on GitHub.

    A fetch downloads the archive of ``main`` once and unpacks all of it into ``cache``
    (default ``~/.cache/soundloc/main``), then marks it complete; every later call, for any
    file or folder, reads from there. (Unpacking only the asked-for folder would leave a later
    request for its parent folder half-filled.)

    Raises:
        FileNotFoundError: not in a checkout and not fetched, or not in the archive; the message
            names the path and says how to get it.
    """
    root = repository_root()
    if root is not None and (root / relative).exists():
        return root / relative
    if fetch is None:
        fetch = "google.colab" in sys.modules
    if not fetch:
        raise FileNotFoundError(f"{relative}: committed results not found; run from a clone of "
                                f"{REPOSITORY_URL} or call committed_path({relative!r}, fetch=True)")
    folder = Path(cache) if cache is not None else Path.home() / ".cache" / "soundloc" / "main"
    url = archive_url or f"{REPOSITORY_URL}/archive/refs/heads/main.zip"
    if not (folder / ".complete").is_file():
        _unpack_archive(url, folder)
    target = folder / relative
    if not target.exists():
        raise FileNotFoundError(f"{relative}: not in {url}")
    return target


def _unpack_archive(url: str, folder: Path) -> None:
    """Download a GitHub-style zip archive (one top folder) and unpack its files into
    ``folder`` (each written atomically), then write ``folder/.complete``."""
    import io
    import urllib.request
    import zipfile

    with urllib.request.urlopen(url, timeout=120) as resp:
        archive = zipfile.ZipFile(io.BytesIO(resp.read()))
    for name in archive.namelist():
        inner = name.split("/", 1)[1] if "/" in name else ""
        if not inner or name.endswith("/"):
            continue
        if inner.startswith("/") or ".." in Path(inner).parts:
            raise ValueError(f"{url}: unsafe path in the archive: {name}")
        with atomic_open(folder / inner, "wb") as fh:
            fh.write(archive.read(name))
    with atomic_open(folder / ".complete", "w") as fh:
        fh.write(url + "\n")


__all__ = ["REPOSITORY_URL", "committed_path", "repository_root"]
