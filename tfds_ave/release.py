"""Reads and validates the AVE release (pre-extracted features) from a manual directory.

Everything that can be checked without reading the 4 GB of visual features is checked up
front by ``read_release`` (layout, shapes, dtypes, row counts, annotation lines, split
indices, the optional label files); ``stream_examples`` then reads the feature files a few
rows at a time (peak memory: ``_CHUNK`` videos) and checks every row for NaN / Inf.
"""

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import h5py
import numpy as np
from etils import epath

from ave_tf import ave
from tfds_ave import annotations

ANNOTATIONS = "Annotations.txt"
AUDIO = "audio_feature.h5"
VISUAL = "visual_feature.h5"
SPLIT_FILES = {"train": "train_order.h5", "validation": "val_order.h5", "test": "test_order.h5"}
NOISY_FILES = ("audio_feature_noisy.h5", "visual_feature_noisy.h5", "labels_noisy.h5")
CROSS_CHECKED = ("right_labels.h5", "mil_labels.h5", "prob_label.h5")
FEATURE_KEY = "avadataset"
ORDER_KEY = "order"

LAYOUT = f"""\
Expected layout of the AVE release in manual_dir (from https://github.com/YapengTian/AVE-ECCV18):
  {ANNOTATIONS}              Category&YouTubeID&Quality&Start&End, one line per video
  {AUDIO}          dataset '{FEATURE_KEY}' (videos, 10, 128) float
  {VISUAL}         dataset '{FEATURE_KEY}' (videos, 10, 7, 7, 512) float (about 4.2 GB)
  train_order.h5             dataset '{ORDER_KEY}' int indices of the training videos (3,339)
  val_order.h5               dataset '{ORDER_KEY}' int indices of the validation videos (402)
  test_order.h5              dataset '{ORDER_KEY}' int indices of the test videos (402)
optional, all three together (adds the split 'train_background', 178 videos):
  audio_feature_noisy.h5     dataset '{FEATURE_KEY}' (noisy, 10, 128) float
  visual_feature_noisy.h5    dataset '{FEATURE_KEY}' (noisy, 10, 7, 7, 512) float
  labels_noisy.h5            dataset '{FEATURE_KEY}' (noisy, 29) background one-hot
optional, cross-checked against the labels derived from {ANNOTATIONS} when present:
  right_labels.h5 (videos, 10, 29), mil_labels.h5 (videos, 29), prob_label.h5 (videos, 29)"""

AUDIO_SHAPE = (ave.NUM_SEGMENTS, ave.AUDIO_DIM)
VISUAL_SHAPE = (ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE)
_CHUNK = 32


class ReleaseError(ValueError):
    """The manual directory does not hold a valid AVE release; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Release:
    """The validated, label-side content of a release; features stay on disk.

    Attributes:
        directory: the manual directory.
        videos: one annotation per video (line *i* = feature row *i*).
        splits: split name -> sorted int64 row indices.
        background_videos: number of noisy background-only videos (0 when absent).
    """

    directory: epath.Path
    videos: list[annotations.VideoAnnotation]
    splits: dict[str, np.ndarray]
    background_videos: int


@contextlib.contextmanager
def _reading(path: epath.Path) -> Iterator[None]:
    """Turns what h5py raises on a damaged file (``OSError``, ``RuntimeError``, ``KeyError``
    from a broken header, object or chunk index) into a ``ReleaseError`` naming ``path``."""
    try:
        yield
    except (OSError, RuntimeError, KeyError) as error:
        raise ReleaseError(f"{path}: damaged or not a readable HDF5 file ({error})") from None


@contextlib.contextmanager
def _open(path: epath.Path) -> Iterator[h5py.File]:
    """The open HDF5 file; any HDF5 error in the block is reported as a ``ReleaseError``
    naming ``path`` (wrap reads of a second open file in ``_reading`` of that file)."""
    with _reading(path), h5py.File(os.fspath(path), "r") as handle:
        yield handle


def _dataset(handle: h5py.File, path: epath.Path, key: str) -> h5py.Dataset:
    if key not in handle:
        raise ReleaseError(
            f"{path}: has no dataset {key!r} (found {sorted(handle.keys())}); see the layout:\n"
            + LAYOUT
        )
    return handle[key]


def _check_array(
    path: epath.Path, dataset: h5py.Dataset, shape: tuple[int, ...], kinds: str
) -> None:
    if dataset.dtype.kind not in kinds:
        expected = {"f": "float", "iu": "integer", "fiu": "numeric"}.get(kinds, kinds)
        raise ReleaseError(
            f"{path}: dataset {dataset.name!r} has dtype {dataset.dtype}, expected {expected}"
        )
    if dataset.shape != shape:
        raise ReleaseError(
            f"{path}: dataset {dataset.name!r} has shape {dataset.shape}, expected {shape}"
        )


def _check_layout(directory: epath.Path) -> bool:
    """Raises when a required file is missing; returns whether the noisy set is present."""
    required = [ANNOTATIONS, AUDIO, VISUAL, *SPLIT_FILES.values()]
    missing = [name for name in required if not (directory / name).exists()]
    if missing:
        raise ReleaseError(f"{directory}: missing {', '.join(missing)}.\n{LAYOUT}")
    noisy = [(directory / name).exists() for name in NOISY_FILES]
    if any(noisy) and not all(noisy):
        absent = [name for name, there in zip(NOISY_FILES, noisy, strict=True) if not there]
        raise ReleaseError(
            f"{directory}: the background set needs all of {', '.join(NOISY_FILES)}; "
            f"missing {', '.join(absent)}.\n{LAYOUT}"
        )
    return all(noisy)


def read_splits(directory: epath.Path, num_videos: int) -> dict[str, np.ndarray]:
    """The three ``*_order.h5`` files: split name -> sorted int64 row indices of
    ``Annotations.txt``; a ``ReleaseError`` for indices out of range, repeated or in two splits.
    """
    splits = {}
    owner = {}
    for split, name in SPLIT_FILES.items():
        path = directory / name
        with _open(path) as handle:
            dataset = _dataset(handle, path, ORDER_KEY)
            if dataset.dtype.kind not in "iuf" or dataset.ndim != 1:
                raise ReleaseError(
                    f"{path}: dataset {ORDER_KEY!r} must be a 1-D array of integer indices, "
                    f"got shape {dataset.shape} dtype {dataset.dtype}"
                )
            raw = dataset[()]
        indices = raw.astype(np.int64)
        if raw.dtype.kind == "f" and not np.array_equal(indices, raw):
            position = int(np.flatnonzero(indices != raw)[0])
            raise ReleaseError(f"{path}: entry {position} = {raw[position]} is not an integer")
        bad = np.flatnonzero((indices < 0) | (indices >= num_videos))
        if bad.size:
            raise ReleaseError(
                f"{path}: entry {int(bad[0])} = video index {int(indices[bad[0]])} is out of "
                f"range [0, {num_videos}) ({ANNOTATIONS} has {num_videos} videos)"
            )
        values, counts = np.unique(indices, return_counts=True)
        if (counts > 1).any():
            raise ReleaseError(
                f"{path}: video index {int(values[counts > 1][0])} is listed more than once"
            )
        for index in indices:
            if int(index) in owner:
                raise ReleaseError(
                    f"{path}: video index {int(index)} is also in {owner[int(index)]}; "
                    "splits must not overlap"
                )
        owner.update({int(index): name for index in indices})
        splits[split] = np.sort(indices)
    return splits


def _cross_check(
    directory: epath.Path, videos: list[annotations.VideoAnnotation], derived: dict
) -> None:
    num = len(videos)
    expected_shapes = {
        "right_labels.h5": (num, ave.NUM_SEGMENTS, ave.NUM_CLASSES),
        "mil_labels.h5": (num, ave.NUM_CLASSES),
        "prob_label.h5": (num, ave.NUM_CLASSES),
    }
    for name in CROSS_CHECKED:
        path = directory / name
        if not path.exists():
            continue
        with _open(path) as handle:
            dataset = _dataset(handle, path, FEATURE_KEY)
            _check_array(path, dataset, expected_shapes[name], "fiu")
            given = dataset[()].astype(np.float32)
        mismatch = ~np.isclose(given, derived[name], atol=1e-5).reshape(num, -1).all(axis=1)
        if mismatch.any():
            row = int(np.flatnonzero(mismatch)[0])
            video = videos[row]
            raise ReleaseError(
                f"{path}: row {row} (video {video.video_id!r}, {ANNOTATIONS} line {video.line}) "
                f"disagrees with the labels derived from {ANNOTATIONS} "
                f"(category {ave.CLASS_NAMES[video.category]!r}, segments "
                f"[{video.start}, {video.end}))"
            )


def utf8_text(path: epath.Path) -> str:
    """The file's text; a ``ReleaseError`` naming the line and byte when it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        bad = raw[error.start : error.start + 1]
        raise ReleaseError(
            f"{path}: line {line} is not UTF-8 text (byte {error.start} is {bad!r}); "
            "the AVE annotations are UTF-8"
        ) from None


def read_release(directory: epath.PathLike) -> Release:
    """Checks everything but the feature values and returns the label-side content.

    Raises:
        ReleaseError: for a missing file (with the expected layout), a wrong shape/dtype, a
            feature file whose row count differs from ``Annotations.txt``, split indices out
            of range, duplicated or in two splits, noisy labels that are not background, or
            a cross-checked label file that disagrees with ``Annotations.txt``.
        annotations.AnnotationError: for a malformed annotation line.
    """
    directory = epath.Path(directory)
    if not directory.exists():
        raise ReleaseError(f"manual_dir {directory} does not exist.\n{LAYOUT}")
    has_noisy = _check_layout(directory)
    videos = annotations.parse_annotations(
        utf8_text(directory / ANNOTATIONS), str(directory / ANNOTATIONS)
    )
    num = len(videos)
    for name, shape in ((AUDIO, AUDIO_SHAPE), (VISUAL, VISUAL_SHAPE)):
        path = directory / name
        with _open(path) as handle:
            dataset = _dataset(handle, path, FEATURE_KEY)
            if dataset.ndim >= 1 and dataset.shape[0] != num:
                raise ReleaseError(
                    f"{path}: has {dataset.shape[0]} rows but {ANNOTATIONS} has {num} videos "
                    "(row i must be the video of line i)"
                )
            _check_array(path, dataset, (num, *shape), "f")
    splits = read_splits(directory, num)
    categories, starts, ends = annotations.as_arrays(videos)
    labels = annotations.segment_labels(categories, starts, ends)
    derived = {
        "right_labels.h5": np.eye(ave.NUM_CLASSES, dtype=np.float32)[labels],
        "mil_labels.h5": annotations.video_labels(categories),
        "prob_label.h5": annotations.prob_labels(labels),
    }
    _cross_check(directory, videos, derived)
    background = 0
    if has_noisy:
        background = _check_noisy(directory)
    return Release(directory, videos, splits, background)


def _check_noisy(directory: epath.Path) -> int:
    audio_path, visual_path, labels_path = (directory / name for name in NOISY_FILES)
    with _open(labels_path) as handle:
        dataset = _dataset(handle, labels_path, FEATURE_KEY)
        if dataset.ndim != 2:
            raise ReleaseError(
                f"{labels_path}: dataset {FEATURE_KEY!r} has shape {dataset.shape}, "
                f"expected (videos, {ave.NUM_CLASSES})"
            )
        count = dataset.shape[0]
        _check_array(labels_path, dataset, (count, ave.NUM_CLASSES), "fiu")
        labels = dataset[()]
    not_background = np.flatnonzero(labels.argmax(axis=1) != ave.BACKGROUND)
    if not_background.size:
        raise ReleaseError(
            f"{labels_path}: row {int(not_background[0])} is not the background one-hot "
            f"(class {ave.BACKGROUND})"
        )
    for path, shape in ((audio_path, AUDIO_SHAPE), (visual_path, VISUAL_SHAPE)):
        with _open(path) as handle:
            dataset = _dataset(handle, path, FEATURE_KEY)
            if dataset.ndim >= 1 and dataset.shape[0] != count:
                raise ReleaseError(
                    f"{path}: has {dataset.shape[0]} rows but {labels_path.name} has {count}"
                )
            _check_array(path, dataset, (count, *shape), "f")
    return count


def _rows(dataset: h5py.Dataset, indices: np.ndarray) -> np.ndarray:
    """Reads sorted rows; a contiguous block when they are dense, else a point selection."""
    first, last = int(indices[0]), int(indices[-1])
    if last - first + 1 <= 2 * len(indices):
        return dataset[first : last + 1][indices - first]
    return dataset[indices]


def _finite(values: np.ndarray, path: epath.Path, indices: np.ndarray, describe) -> np.ndarray:
    values = values.astype(np.float32, copy=False)
    finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    if not finite.all():
        row = int(indices[np.flatnonzero(~finite)[0]])
        raise ReleaseError(f"{path}: NaN or Inf in the features of {describe(row)}")
    return values


def stream_examples(release: Release, split: str) -> Iterator[tuple[str, dict]]:
    """Yields ``(video_id, example)`` for a split, reading ``_CHUNK`` videos at a time.

    ``split`` is ``train``, ``validation``, ``test`` or ``train_background``.

    Raises:
        ReleaseError: naming the file and the video when a feature row holds NaN or Inf.
    """
    directory = release.directory
    if split == "train_background":
        audio_path, visual_path = directory / NOISY_FILES[0], directory / NOISY_FILES[1]
        indices = np.arange(release.background_videos)
        video_ids = [f"background_{index:03d}" for index in indices]
        prefix = "background_"

        def describe(row):
            return f"background video {row} (row {row})"

        categories = np.full(len(indices), ave.BACKGROUND, np.int64)
        starts = ends = np.zeros(len(indices), np.int64)
    else:
        audio_path, visual_path = directory / AUDIO, directory / VISUAL
        indices = release.splits[split]
        video_ids = [release.videos[index].video_id for index in indices]
        prefix = ""

        def describe(row):
            video = release.videos[row]
            return f"video {row} ({video.video_id!r}, {ANNOTATIONS} line {video.line})"

        categories, starts, ends = annotations.as_arrays([release.videos[i] for i in indices])
    with _open(audio_path) as audio_file, _open(visual_path) as visual_file:
        with _reading(audio_path):
            audio_data = audio_file[FEATURE_KEY]
        visual_data = visual_file[FEATURE_KEY]
        for first in range(0, len(indices), _CHUNK):
            part = slice(first, first + _CHUNK)
            rows = indices[part]
            with _reading(audio_path):
                audio = _finite(_rows(audio_data, rows), audio_path, rows, describe)
            with _reading(visual_path):
                visual = _finite(_rows(visual_data, rows), visual_path, rows, describe)
            examples = annotations.label_fields(
                categories[part], starts[part], ends[part], audio=audio, visual=visual
            )
            for row, video_id, example in zip(rows, video_ids[part], examples, strict=True):
                # Keys are unique (AVE annotates 45 YouTube ids twice): row + id.
                yield f"{prefix}{int(row):04d}_{video_id}", {"video_id": video_id, **example}
