"""The Sound Source Localization dataset: per-pair XML → :class:`Annotation`, splits, grid masks.

Senocak et al. (2018, Sec. 4) had 3 annotators per image/sound pair draw a box around the
sound source in a 256×256 frame and tag it "object" or "ambient"; 250 pairs are the test set,
the rest is the supervision pool of the supervised loss L_S (Sec. 3.3). The download comes as::

    SRC/Annotations/<id>.xml
    SRC/Data/<0-9>/<id>.wav       mono, 22,050 Hz, 16-bit, 20 s
    SRC/Data/<0-9>/<id>.jpg       256×256 frame

The XML schema is not documented. Later repositories read, for every child of the root, its
``bbox`` elements and take the 2nd–5th sub-elements as xmin, ymin, xmax, ymax. This parser
reads **by tag name** instead and fails loudly on anything it cannot read (it never skips a
file or substitutes another sample):

- a box element is any element named ``bbox``, ``bndbox`` or ``box`` (case-insensitive);
- its coordinates are children (or attributes) named ``xmin/ymin/xmax/ymax`` (also
  ``x1/y1/x2/y2``, ``left/top/right/bottom``, or ``x/y/width/height``), in any order;
  integers in the 256×256 frame (integral decimals such as ``"12.0"`` are accepted);
- one annotator = the element that holds the box (its parent; a box directly under the root is
  one annotator by itself); several boxes under one parent are that annotator's union;
- the tag is any text or attribute value ``object`` / ``ambient`` (case-insensitive) inside
  the box or directly inside its annotator element; none gives ``""``, two different ones are
  an error.

Boxes are stored as given, half-open ``[xmin, xmax) × [ymin, ymax)``, which is how the
evaluation code of later papers rasterises them (``map[ymin:ymax, xmin:xmax] = 1``).

Parsing goes through ``defusedxml``: DTD entity declarations (billion-laughs expansion) and
external references are refused.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundloc.data.layout import (
    ANNOTATIONS_FILE,
    AUDIO_DIR,
    FAILURES_FILE,
    FRAMES_DIR,
    split_path,
    write_annotations,
    write_failures,
    write_id_list,
    write_index,
)
from soundloc.data.leakage import dedupe, read_ids
from soundloc.data.types import ANNOTATION_FRAME, SAMPLE_RATE, Annotation
from soundloc.utils.files import atomic_path

BOX_TAGS = frozenset({"bbox", "bndbox", "box"})
TAG_VALUES = frozenset({"object", "ambient"})
_COORD_ALIASES: dict[str, str] = {
    "xmin": "xmin", "x1": "xmin", "left": "xmin", "x_min": "xmin",
    "ymin": "ymin", "y1": "ymin", "top": "ymin", "y_min": "ymin",
    "xmax": "xmax", "x2": "xmax", "right": "xmax", "x_max": "xmax",
    "ymax": "ymax", "y2": "ymax", "bottom": "ymax", "y_max": "ymax",
    "x": "x", "y": "y", "w": "w", "width": "w", "h": "h", "height": "h",
}


class AnnotationError(ValueError):
    """An annotation file cannot be read as boxes (the message names the file)."""


def _local(tag: Any) -> str:
    """Tag name without a ``{namespace}``, lower-cased ('' for comments/processing instructions)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _int_coord(path: Path, k: int, name: str, text: str | None) -> int:
    if text is None or not text.strip():
        raise AnnotationError(f"{path}: box {k}: coordinate {name} is empty")
    try:
        value = float(text.strip())
    except ValueError as exc:
        raise AnnotationError(f"{path}: box {k}: coordinate {name}={text.strip()!r} is not a number") from exc
    if not np.isfinite(value) or value != int(value):
        raise AnnotationError(f"{path}: box {k}: coordinate {name}={text.strip()!r} is not an integer")
    return int(value)


def _tag_values(texts: Iterable[str | None]) -> set[str]:
    return {t.strip().lower() for t in texts if t and t.strip().lower() in TAG_VALUES}


def _read_xml(path: Path) -> Any:
    """The root element of a pair's XML file, parsed without DTD entities or external refs."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    try:
        return SafeET.parse(str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as exc:
        raise AnnotationError(f"{path}: refused unsafe XML ({type(exc).__name__}: {exc})") from exc
    except SafeET.ParseError as exc:
        raise AnnotationError(f"{path}: malformed XML ({exc})") from exc


def _box_groups(root: Any, path: Path) -> list[tuple[Any, list[Any]]]:
    """The box elements grouped by annotator: ``(annotator element, its boxes)`` in order."""
    parent_of = {child: parent for parent in root.iter() for child in parent}
    groups: dict[int, tuple[Any, list[Any]]] = {}
    for el in root.iter():
        if _local(el.tag) in BOX_TAGS:
            parent = parent_of.get(el)
            owner = el if parent is None or parent is root else parent
            groups.setdefault(id(owner), (owner, []))[1].append(el)
    if not groups:
        raise AnnotationError(f"{path}: no bbox element found")
    return list(groups.values())


def _read_box(path: Path, k: int, box: Any, frame_size: int) -> tuple[tuple[int, int, int, int], set[str]]:
    """Box ``k``'s corners (from attributes or child elements; ``x, y, w, h`` accepted) and the
    tags found in it, checked to lie inside the frame."""
    coords: dict[str, int] = {}
    found_tags: set[str] = set()
    for name, value in box.attrib.items():
        key = _COORD_ALIASES.get(_local(name))
        if key:
            coords[key] = _int_coord(path, k, name, value)
    for child in box:
        key = _COORD_ALIASES.get(_local(child.tag))
        if key is None:
            found_tags |= _tag_values([child.text, *child.attrib.values()])
            continue
        if key in coords:
            raise AnnotationError(f"{path}: box {k}: coordinate {key} given twice")
        coords[key] = _int_coord(path, k, child.tag, child.text)
    found_tags |= _tag_values(box.attrib.values())
    if {"x", "y", "w", "h"} <= set(coords) and not {"xmin", "ymin", "xmax", "ymax"} & set(coords):
        coords = {"xmin": coords["x"], "ymin": coords["y"],
                  "xmax": coords["x"] + coords["w"], "ymax": coords["y"] + coords["h"]}
    missing = [c for c in ("xmin", "ymin", "xmax", "ymax") if c not in coords]
    if missing:
        raise AnnotationError(f"{path}: box {k}: missing coordinate(s) {missing}")
    x1, y1, x2, y2 = coords["xmin"], coords["ymin"], coords["xmax"], coords["ymax"]
    if min(x1, y1, x2, y2) < 0 or max(x1, y1, x2, y2) > frame_size:
        raise AnnotationError(f"{path}: box {k}: ({x1}, {y1}, {x2}, {y2}) lies outside the {frame_size}×{frame_size} frame")
    if x2 < x1 or y2 < y1:
        raise AnnotationError(f"{path}: box {k}: ({x1}, {y1}, {x2}, {y2}) has xmax < xmin or ymax < ymin")
    return (x1, y1, x2, y2), found_tags


def parse_annotation_xml(path: str | os.PathLike[str], frame_size: int = ANNOTATION_FRAME) -> Annotation:
    """Parse one pair's XML file into an :class:`Annotation` (see the module docstring for the rules).

    Raises:
        FileNotFoundError: the file is missing.
        AnnotationError: malformed XML, refused DTD/entities, no box, a missing, repeated,
            non-integer or out-of-frame coordinate, an inverted box, or conflicting tags; the
            message names the file.
    """
    path = Path(path)
    boxes_by_annotator: list[tuple[tuple[int, int, int, int], ...]] = []
    tags: list[str] = []
    k = 0
    for owner, box_elements in _box_groups(_read_xml(path), path):
        boxes = []
        found_tags: set[str] = set()
        for box in box_elements:
            corners, box_tags = _read_box(path, k, box, frame_size)
            boxes.append(corners)
            found_tags |= box_tags
            k += 1
        if owner not in box_elements:  # the annotator element's own texts and attributes
            found_tags |= _tag_values([*owner.attrib.values()])
            found_tags |= _tag_values(c.text for c in owner if _local(c.tag) not in BOX_TAGS)
        if len(found_tags) > 1:
            raise AnnotationError(f"{path}: annotator {len(tags)} has conflicting tags {sorted(found_tags)}")
        boxes_by_annotator.append(tuple(boxes))
        tags.append(found_tags.pop() if found_tags else "")
    return Annotation(boxes=tuple(boxes_by_annotator), tags=tuple(tags), frame_size=frame_size)


@dataclass
class ParseReport:
    """Result of :func:`parse_annotation_dir`: annotations by id, and files that failed."""

    annotations: dict[str, Annotation] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def annotator_counts(self) -> dict[int, int]:
        """How many pairs have 1, 2, 3... annotators (the paper has 3 per pair)."""
        counts: dict[int, int] = {}
        for a in self.annotations.values():
            counts[a.num_annotators] = counts.get(a.num_annotators, 0) + 1
        return dict(sorted(counts.items()))


def parse_annotation_dir(
    xml_dir: str | os.PathLike[str],
    frame_size: int = ANNOTATION_FRAME,
    on_error: str = "raise",
    progress: bool = True,
) -> ParseReport:
    """Parse every ``<id>.xml`` of a folder (sorted by id).

    Args:
        on_error: ``"raise"`` (default: the first bad file stops everything, naming it) or
            ``"record"`` (bad files go to :attr:`ParseReport.failed` with the reason).
    """
    if on_error not in {"raise", "record"}:
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    xml_dir = Path(xml_dir)
    if not xml_dir.is_dir():
        raise FileNotFoundError(f"{xml_dir}: annotation folder not found")
    files = sorted(p for p in xml_dir.iterdir() if p.suffix.lower() == ".xml" and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{xml_dir}: no .xml files")
    from tqdm.auto import tqdm

    report = ParseReport()
    for p in tqdm(files, desc="annotations", disable=not progress):
        try:
            report.annotations[p.stem] = parse_annotation_xml(p, frame_size)
        except AnnotationError as exc:
            if on_error == "raise":
                raise
            report.failed.append((p.stem, str(exc)))
    return report


@dataclass
class Splits:
    """Train (supervision pool) / test split of the annotated pairs.

    Attributes:
        test: the 250-id test list's ids that are annotated (list order).
        test249: the same for the 249-id list (empty when not given).
        train: every other annotated id (sorted): the supervision pool.
        missing_test: ids of either test list without an annotation (reported, never invented).
    """

    test: list[str]
    test249: list[str]
    train: list[str]
    missing_test: list[str]

    def summary(self) -> str:
        s = f"test: {len(self.test)} ids"
        if self.test249:
            s += f", test249: {len(self.test249)} ids"
        s += f"; supervision pool (train): {len(self.train)} ids"
        if self.missing_test:
            s += f"; WARNING {len(self.missing_test)} test id(s) have no annotation: {self.missing_test[:5]}"
        return s


def make_splits(annotated_ids: Iterable[str], test_ids: Sequence[str], test249_ids: Sequence[str] | None = None) -> Splits:
    """Split the annotated ids: test lists as given; train = all annotated ids not in any test list."""
    annotated = set(annotated_ids)
    test = dedupe(test_ids)
    t249 = dedupe(test249_ids or [])
    excluded = set(test) | set(t249)
    missing = dedupe(i for i in [*test, *t249] if i not in annotated)
    return Splits(
        test=[i for i in test if i in annotated],
        test249=[i for i in t249 if i in annotated],
        train=sorted(annotated - excluded),
        missing_test=missing,
    )


def write_splits(root: str | os.PathLike[str], splits: Splits) -> list[Path]:
    """Write ``splits/test.txt``, ``splits/test249.txt`` (when non-empty) and ``splits/train.txt``."""
    written = [write_id_list(split_path(root, "test"), splits.test)]
    if splits.test249:
        written.append(write_id_list(split_path(root, "test249"), splits.test249))
    written.append(write_id_list(split_path(root, "train"), splits.train))
    return written


def grid_masks(annotations: Mapping[str, Annotation], grid: int | tuple[int, int]) -> dict[str, np.ndarray]:
    """Ground-truth attention on the model's grid for every annotator (α_GT of L_S, Sec. 3.3).

    Returns arrays: ``ids`` [N] (str), ``per_annotator`` [N, A, h, w] float32 (each annotator's
    map sums to 1; all-zero rows where a pair has fewer than A annotators or an empty box),
    ``n_annotators`` [N] int, ``consensus`` [N, h, w] (the evaluation's min(Σ_j b_j / 2, 1)
    consensus map, normalised to sum 1). Computed with :func:`soundloc.data.dataset.annotation_attention`,
    so they equal what :class:`AVDataset` makes at load time.
    """
    from soundloc.data.dataset import annotation_attention

    h, w = (grid, grid) if isinstance(grid, int) else grid
    ids = list(annotations)
    a_max = max((a.num_annotators for a in annotations.values()), default=0)
    per = np.zeros((len(ids), a_max, h, w), dtype=np.float32)
    cons = np.zeros((len(ids), h, w), dtype=np.float32)
    counts = np.zeros(len(ids), dtype=np.int64)
    for n, key in enumerate(ids):
        ann = annotations[key]
        counts[n] = ann.num_annotators
        for j in range(ann.num_annotators):
            m = annotation_attention(ann, (h, w), annotator=j)
            if m is not None:
                per[n, j] = m.numpy()
        c = annotation_attention(ann, (h, w), annotator="consensus")
        if c is not None:
            cons[n] = c.numpy()
    return {"ids": np.array(ids, dtype=str), "per_annotator": per, "n_annotators": counts, "consensus": cons}


def write_grid_masks(path: str | os.PathLike[str], annotations: Mapping[str, Annotation], grid: int | tuple[int, int]) -> Path:
    """Save :func:`grid_masks` as a compressed ``.npz`` (atomically)."""
    arrays = grid_masks(annotations, grid)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


def prepare_annotations(
    xml_dir: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    test_list: str | os.PathLike[str] | None = None,
    test249_list: str | os.PathLike[str] | None = None,
    grid: int | None = None,
    on_error: str = "raise",
    frame_size: int = ANNOTATION_FRAME,
    progress: bool = True,
) -> tuple[ParseReport, Splits | None]:
    """XML folder → ``annotations.json``; with a test list also ``splits/`` beside it; with
    ``grid`` also ``grid_masks_<g>x<g>.npz`` beside it. Returns the parse report and splits."""
    report = parse_annotation_dir(xml_dir, frame_size, on_error, progress)
    out_json = Path(out_json)
    write_annotations(out_json, report.annotations, source=str(Path(xml_dir).name))
    root = out_json.parent
    if report.failed:
        write_failures(root / FAILURES_FILE, report.failed)
    splits = None
    if test_list is not None:
        splits = make_splits(report.annotations, read_ids(test_list), read_ids(test249_list) if test249_list else None)
        write_splits(root, splits)
    if grid is not None:
        write_grid_masks(root / f"grid_masks_{grid}x{grid}.npz", report.annotations, grid)
    return report, splits


# --------------------------------------------------------------------------- downloaded set


@dataclass
class ImportReport:
    """Result of :func:`import_annotated_set`."""

    ids: list[str] = field(default_factory=list)
    annotated: int = 0
    unannotated: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    splits: Splits | None = None
    annotator_counts: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        s = (f"{len(self.ids)} pairs in the index ({self.annotated} annotated, {len(self.unannotated)} without "
             f"annotation), {len(self.failed)} failed; annotators per pair: {self.annotator_counts}")
        if self.splits is not None:
            s += "\n" + self.splits.summary()
        return s


def find_pairs(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, Path]]:
    """``{id: {"frame": path, "audio": path}}`` for the files under ``data_dir`` (any depth).

    Raises:
        ValueError: one id has two frames or two audio files (the message names both).
    """
    out: dict[str, dict[str, Path]] = {}
    kinds = {".jpg": "frame", ".jpeg": "frame", ".png": "frame", ".wav": "audio"}
    for p in sorted(Path(data_dir).rglob("*")):
        kind = kinds.get(p.suffix.lower())
        if kind is None or not p.is_file() or p.name.startswith("."):
            continue
        slot = out.setdefault(p.stem, {})
        if kind in slot:
            raise ValueError(f"two {kind} files for id {p.stem!r}: {slot[kind]} and {p}")
        slot[kind] = p
    return out


def _place(src: Path, dest: Path, link: str) -> None:
    """Copy/link ``src`` to ``dest`` unless an identical-size file is there; atomic for copies."""
    if dest.is_file() and dest.stat().st_size == src.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link == "copy":
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    elif link == "hardlink":
        dest.unlink(missing_ok=True)
        os.link(src, dest)
    else:
        dest.unlink(missing_ok=True)
        os.symlink(src.resolve(), dest)


def read_download(src: Path, frame_size: int = ANNOTATION_FRAME, on_error: str = "raise",
                  progress: bool = True) -> tuple[ParseReport, dict[str, dict[str, Path]]]:
    """The downloaded set as it unpacks: every ``SRC/Annotations/<id>.xml`` parsed, and every
    pair's frame and audio found wherever they sit under ``SRC/Data/``."""
    ann_dir, data_dir = src / "Annotations", src / "Data"
    for d in (ann_dir, data_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: not found; expected SRC/Annotations/<id>.xml and SRC/Data/<0-9>/<id>.wav|.jpg")
    return parse_annotation_dir(ann_dir, frame_size, on_error, progress), find_pairs(data_dir)


def _audio_problem(path: Path) -> str | None:
    """Why the pair's audio cannot be used (unreadable, not mono 22,050 Hz, empty), or ``None``."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        return f"{path}: unreadable audio ({exc})"
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames == 0:
        return (f"{path}: {info.samplerate} Hz, {info.channels} channel(s), {info.frames} samples; "
                f"expected mono {SAMPLE_RATE} Hz")
    return None


def _place_pairs(pairs: dict[str, dict[str, Path]], parsed: ParseReport, out: Path, link: str, src: Path,
                 report: ImportReport, progress: bool) -> list[dict[str, str]]:
    """Put every usable pair's frame and audio into the layout at ``out``; the others go to
    ``report.failed``. Returns the index rows."""
    from tqdm.auto import tqdm

    bad_xml = {i for i, _ in parsed.failed}
    rows = []
    for item_id in tqdm(sorted(set(pairs) | set(parsed.annotations)), desc="import", disable=not progress):
        if item_id in bad_xml:
            continue
        files = pairs.get(item_id, {})
        missing = [k for k in ("frame", "audio") if k not in files]
        problem = f"no {' or '.join(missing)} file under {src / 'Data'}" if missing else _audio_problem(files["audio"])
        if problem:
            report.failed.append((item_id, problem))
            continue
        frame_rel = f"{FRAMES_DIR}/{item_id}{files['frame'].suffix.lower()}"
        audio_rel = f"{AUDIO_DIR}/{item_id}.wav"
        _place(files["frame"], out / frame_rel, link)
        _place(files["audio"], out / audio_rel, link)
        rows.append({"id": item_id, "frame": frame_rel, "audio": audio_rel})
        report.ids.append(item_id)
        if item_id not in parsed.annotations:
            report.unannotated.append(item_id)
    return rows


def import_annotated_set(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    test_list: str | os.PathLike[str] | None = None,
    test249_list: str | os.PathLike[str] | None = None,
    link: str = "copy",
    grid: int | None = None,
    on_error: str = "raise",
    frame_size: int = ANNOTATION_FRAME,
    progress: bool = True,
) -> ImportReport:
    """Read the downloaded set (``SRC/Annotations/*.xml``, ``SRC/Data/**/<id>.wav|.jpg``) as it
    comes (:func:`read_download`) and write the prepared layout at ``out`` (frames/, audio/,
    index.csv, annotations.json, splits/, failures.csv, optionally grid masks).

    Audio must be mono 22,050 Hz (checked from the WAV header); a pair whose audio is not, or
    whose frame or audio is missing, goes to ``failures.csv``. ``link`` is ``"copy"``,
    ``"hardlink"`` or ``"symlink"``.
    """
    if link not in {"copy", "hardlink", "symlink"}:
        raise ValueError(f"link must be 'copy', 'hardlink' or 'symlink', got {link!r}")
    src, out = Path(src), Path(out)
    parsed, pairs = read_download(src, frame_size, on_error, progress)
    report = ImportReport(failed=list(parsed.failed))
    write_index(out, _place_pairs(pairs, parsed, out, link, src, report, progress))
    kept = {i: parsed.annotations[i] for i in report.ids if i in parsed.annotations}
    report.annotated = len(kept)
    report.annotator_counts = ParseReport(kept).annotator_counts()
    write_annotations(out / ANNOTATIONS_FILE, kept, source=str(src))
    write_failures(out / FAILURES_FILE, report.failed)
    if test_list is not None:
        report.splits = make_splits(kept, read_ids(test_list), read_ids(test249_list) if test249_list else None)
        write_splits(out, report.splits)
    if grid is not None:
        write_grid_masks(out / f"grid_masks_{grid}x{grid}.npz", kept, grid)
    return report
