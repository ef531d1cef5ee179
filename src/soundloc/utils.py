"""Small helpers shared by every part of the library: seeding, atomic writes, devices."""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a run repeats on the same machine."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch

    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Every global random state a run draws from (torch CPU, each CUDA device when present,
    NumPy's legacy generator, Python's ``random``), as tensors and plain types that a
    checkpoint loads with ``torch.load(weights_only=True)``; :func:`set_rng_state` restores it."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`get_rng_state` output. CUDA states are restored when this machine has
    as many CUDA devices as the saved state (a run moved to another machine cannot repeat its
    GPU draws anyway)."""
    import torch

    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open ``path`` for writing through a temporary file in the same folder.

    The temporary file is renamed onto ``path`` only when the block finishes without an
    exception, so a crash never leaves a half-written file under the final name.
    """
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open is for writing; got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode.replace("x", "w"), **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    For writers that want a file name rather than a handle (``soundfile.write``, PIL's
    ``Image.save``, ``torch.save``, ffmpeg). The temporary name keeps the final suffix so
    that format detection by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.part.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def stale_parts(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that :func:`atomic_path` (``.STEM.part.XXXX.SUFFIX``) and
    :func:`atomic_open` (``.NAME.XXXX.part``) leave beside ``path`` when the process dies while
    writing it (SIGKILL, power loss: no ``except`` runs). Safe to delete when no other process
    is writing ``path`` at the same time."""
    path = Path(path)
    patterns = (f".{path.stem}.part.*{path.suffix}", f".{path.name}.*.part")
    return sorted({p for pattern in patterns for p in path.parent.glob(pattern) if p.is_file()})


def read_torch_file(path: str | os.PathLike[str], what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with errors that name the file and say what
    is wrong: ``FileNotFoundError`` when it is missing, ``ValueError`` when it is not a file
    written by ``torch.save`` (an image, a text file: torch's own message would be the
    unpickler's, e.g. "pop from empty list") or cannot be read. ``what`` names the file's
    role in the messages (e.g. ``"model file"``)."""
    import zipfile

    import torch

    name = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} does not exist: {name!r}")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not zipfile.is_zipfile(path) and head != b"\x80\x02":  # torch.save's archive, or its legacy pickle
        raise ValueError(f"{what} {name!r} is not a file written by torch.save")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"could not read {what} {name!r}: {reason}") from exc


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by ``None`` and tuples by lists, recursively
    (strict JSON has no NaN); dict keys become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def progress_bar(iterable: Any, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm progress bar over ``iterable``, or ``iterable`` itself when not ``enabled``.

    The bar is given an *iterator* of ``iterable`` and its length, so building it never starts
    a second pass: ``tqdm.auto``'s bar calls ``iter()`` on what it wraps when it is created, and
    each ``iter()`` of a shuffling DataLoader draws from its generator, so wrapping the loader
    itself made the batch order (and every number after it) depend on whether progress was shown.
    """
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    if "total" not in kwargs and hasattr(iterable, "__len__"):
        kwargs["total"] = len(iterable)
    return tqdm(iter(iterable), **kwargs)


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


def mean_std(values: Any) -> tuple[float, float | None]:
    """Mean and *sample* standard deviation (``ddof = 1``) of a few runs' values, e.g. over
    seeds; the deviation is ``None`` for a single value. Every "mean ± std" of the library and
    the book uses this one estimator."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("mean_std: no values")
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def format_pair(mean: float, std: float | None, digits: int = 3, single: str = "", signed: bool = False) -> str:
    """``"m ± s"`` with ``digits`` decimals, or ``"m"`` + ``single`` where ``std`` is ``None``
    (one run); ``signed`` writes the mean's sign (a change). The one format of a mean and its
    spread in every table of the library."""
    m = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return m + single if std is None else f"{m} ± {std:.{digits}f}"


def format_mean_std(values: Any, digits: int = 3) -> str:
    """``"m ± s"`` with ``digits`` decimals (:func:`mean_std`), or ``"m (one run)"``."""
    return format_pair(*mean_std(values), digits=digits, single=" (one run)")


def quick_mode() -> bool:
    """True when ``SOUNDLOC_QUICK`` is set to a true value (chapters shrink their runs)."""
    return os.environ.get("SOUNDLOC_QUICK", "").strip().lower() not in {"", "0", "false", "no"}


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read a JSON file; errors name the file.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says which ``what`` is missing).
        ValueError: the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


#: The file in a :func:`scratch_dir` folder that names the process that made it.
SCRATCH_OWNER = ".soundloc-owner-pid"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def scratch_dir(prefix: str = "soundloc-") -> Path:
    """A new empty folder in the temporary directory (``TMPDIR``) that is removed, with its
    contents, when the Python process exits: where a run's files go when the caller asked for
    no output folder (a chapter's kernel under papermill or the book build), so that repeated
    runs leave nothing behind.

    A process that is killed (nbval stops its kernels so) runs no exit handler: each folder
    names its process in :data:`SCRATCH_OWNER`, and every call first removes the folders of
    ``prefix`` whose process is gone. Folders without that file are never touched."""
    import atexit
    import shutil

    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((old / SCRATCH_OWNER).read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _process_alive(owner):
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    (folder / SCRATCH_OWNER).write_text(str(os.getpid()))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def pipe_table(header: Any, rows: Any, align: str | None = None) -> str:
    """A Markdown pipe table (GitHub-flavoured, as Jupyter, Colab and the HTML book render it):
    ``header`` names the columns, each row gives one cell per column (``None`` is written as an
    en dash), ``align`` is one letter per column (``l``, ``r`` or ``c``; default: left). A ``|``
    inside a cell is escaped, so a cell never splits a row."""
    header = [str(h) for h in header]
    if not header:
        raise ValueError("pipe_table: no columns")
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set("lrc"):
        raise ValueError(f"pipe_table: align must be one of l, r, c per column ({len(header)}), got {align!r}")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [line(header), "|" + "|".join(marks[a] for a in align) + "|"]
    for i, row in enumerate(rows):
        cells = ["–" if c is None else str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"pipe_table: row {i} has {len(cells)} cells for {len(header)} columns")
        out.append(line(cells))
    return "\n".join(out) + "\n"
