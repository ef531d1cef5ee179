"""Train/test leakage checks, and a tolerant reader for the id lists they compare.

The evaluation uses a fixed list of 250 annotated test pairs (Senocak et al., 2018, Sec. 5;
later papers use 249 of them). Some published Flickr-SoundNet training lists contain test ids
(20 in one of them; PAPER_NOTES, Data), which inflates test scores. Training therefore
compares its list with the test ids first: :func:`check_leakage` reports the overlap and
:func:`enforce_no_leakage` removes it (or refuses to go on) before training starts.

Ids are compared after normalisation: surrounding space, a path or URL prefix and a file
extension are dropped (``"videos/123.mp4"`` and ``"123"`` are the same id).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: First-line values that mark a header row in a CSV id list.
_HEADER_WORDS = frozenset({"id", "ids", "file", "filename", "file_name", "name", "video", "video_id", "youtube_id"})
_STRIP_EXT = frozenset({".mp4", ".jpg", ".jpeg", ".png", ".wav", ".xml", ".mkv", ".webm", ".mov", ".avi", ".npy", ".mp3", ".flac"})


def normalize_id(raw: str) -> str:
    """The bare id of a list entry: no space, no path/URL prefix, no media extension, no query."""
    s = raw.strip().split("?")[0].split("#")[0].rstrip("/")
    s = s.rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(s)
    return stem if ext.lower() in _STRIP_EXT else s


def parse_ids(lines: Iterable[str]) -> list[str]:
    """Ids from the lines of a list: one per line, or CSV (first field), ``#`` comments and blank
    lines skipped, a header row skipped, order kept, repeats kept (use :func:`dedupe`)."""
    ids: list[str] = []
    first = True
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        field0 = line.split(",")[0].split("\t")[0].strip().strip('"').strip("'")
        if first and field0.lower() in _HEADER_WORDS:
            first = False
            continue
        first = False
        if field0:
            ids.append(normalize_id(field0))
    return ids


def read_ids(path: str | os.PathLike[str]) -> list[str]:
    """:func:`parse_ids` on a file (plain list or CSV such as LVS's ``flickr_test.csv``).

    Raises:
        FileNotFoundError: the list is missing (the message names it).
        ValueError: the list holds no id.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: id list not found")
    ids = parse_ids(path.read_text(encoding="utf-8-sig").splitlines())
    if not ids:
        raise ValueError(f"{path}: no ids in the list")
    return ids


def dedupe(ids: Iterable[str]) -> list[str]:
    """Ids in first-seen order without repeats."""
    return list(dict.fromkeys(ids))


@dataclass
class LeakageReport:
    """Overlap between a training list and the test ids.

    Attributes:
        n_train, n_test: distinct ids in each list.
        overlap: test ids found in the training list, in training-list order.
    """

    n_train: int
    n_test: int
    overlap: list[str] = field(default_factory=list)

    @property
    def leaked(self) -> bool:
        return bool(self.overlap)

    def __str__(self) -> str:
        if not self.overlap:
            return f"no leakage: none of the {self.n_test} test ids is among the {self.n_train} training ids"
        shown = ", ".join(self.overlap[:10]) + (" ..." if len(self.overlap) > 10 else "")
        return (
            f"LEAKAGE: {len(self.overlap)} of the {self.n_test} test ids are in the training list "
            f"({self.n_train} ids): {shown}"
        )


def check_leakage(train_ids: Iterable[str], test_ids: Iterable[str]) -> LeakageReport:
    """Report which test ids also appear in the training ids (after :func:`normalize_id`)."""
    train = dedupe(normalize_id(i) for i in train_ids)
    test = set(normalize_id(i) for i in test_ids)
    return LeakageReport(n_train=len(train), n_test=len(test), overlap=[i for i in train if i in test])


def remove_leakage(train_ids: Sequence[str], test_ids: Iterable[str]) -> tuple[list[str], LeakageReport]:
    """Training ids without the test ids (order kept; the ids are returned as given), and the report."""
    report = check_leakage(train_ids, test_ids)
    bad = set(report.overlap)
    return [i for i in train_ids if normalize_id(i) not in bad], report


class LeakageError(ValueError):
    """A training list contains test ids and the policy is ``"error"``."""


def enforce_no_leakage(
    train_ids: Sequence[str],
    test_ids: Iterable[str],
    policy: str = "remove",
    log: Callable[[str], None] | None = print,
) -> list[str]:
    """What training calls before it starts: report the overlap, then apply ``policy``.

    Args:
        policy: ``"remove"`` (default: drop the leaked ids), ``"error"`` (raise
            :class:`LeakageError`) or ``"keep"`` (train on them anyway, e.g. to reproduce a
            published leaky setting; the report is still logged).
        log: where the report goes (``None``: nowhere).

    Returns:
        The training ids to use.
    """
    if policy not in {"remove", "error", "keep"}:
        raise ValueError(f"policy must be 'remove', 'error' or 'keep', got {policy!r}")
    clean, report = remove_leakage(train_ids, test_ids)
    if log is not None:
        log(str(report))
    if not report.leaked or policy == "keep":
        return list(train_ids)
    if policy == "error":
        raise LeakageError(str(report))
    if log is not None:
        log(f"removed {len(train_ids) - len(clean)} leaked entries; {len(clean)} training ids remain")
    return clean
