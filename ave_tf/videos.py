"""The one reader of AVE videos: a features file (``.npz``/``.h5``) or a ``tfds_ave`` split.

    videos = read_features_file("videos.npz")             # Videos: audio, visual, labels, ids
    videos = read_split("synthetic", "test[:8]")           # a split, in stored order
    for batch in split_batches("features", "test", 64):   # the same split, streamed
        ...

A features file holds ``audio`` (N, 10, 128) and ``visual`` (N, 10, 7, 7, 512) (a single
video may drop the leading N), optionally ``segment_labels`` (N, 10) ints in [0, 29) and
``video_ids`` (or ``video_id``) (N,) strings; without ids, video i of ``dir/name.npz`` is
``name[i]``. Every bad input raises ``VideoSourceError`` (an ``ave_tf.errors.UsageError``)
naming the file or split, the field and the shape or value at fault.

A file with negative audio features and no ``recipe_version`` attribute of the current
recipe (`ave_tf.extraction.RECIPE_VERSION`), e.g. one written by ``ave_tf.extract`` before
VGGish's fc2 had its ReLU, is read with one ``warning:`` line on stderr: models trained on the
AVE release never saw signed audio features.
"""

import dataclasses
import pathlib
import sys
import zipfile
from collections.abc import Iterator

import numpy as np

from ave_tf import ave
from ave_tf.errors import UsageError
from ave_tf.extraction import RECIPE_VERSION

FEATURES_SUFFIXES = (".npz", ".h5", ".hdf5")
SPLIT_SPEC_EXAMPLE = "tfds_ave/synthetic:test[:8]"
_TFDS_FEATURES = ("video_id", "audio", "visual", "segment_labels")


class VideoSourceError(UsageError):
    """A features file or split that cannot be read as videos (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Videos:
    """A batch of AVE videos.

    Attributes:
        audio: (videos, 10, 128) float32 audio features.
        visual: (videos, 10, 7, 7, 512) float32 visual maps.
        segment_labels: (videos, 10) int64 class per segment, or None when unknown.
        video_ids: one id per video.
    """

    audio: np.ndarray
    visual: np.ndarray
    segment_labels: np.ndarray | None
    video_ids: tuple[str, ...]

    def __len__(self) -> int:
        return self.audio.shape[0]

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """The model inputs ``{"audio", "visual"}``."""
        return {"audio": self.audio, "visual": self.visual}

    def select(self, indices) -> "Videos":
        """The videos at ``indices`` (refuses an index out of range, naming it)."""
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < len(self)]
        if bad:
            raise VideoSourceError(
                f"video index {bad[0]} out of range: there are {len(self)} videos"
            )
        labels = None if self.segment_labels is None else self.segment_labels[indices]
        return Videos(
            self.audio[indices],
            self.visual[indices],
            labels,
            tuple(self.video_ids[i] for i in indices),
        )

    @classmethod
    def concatenate(cls, parts: list["Videos"]) -> "Videos":
        """One ``Videos`` of several, in order (labels kept only when every part has them)."""
        with_labels = all(part.segment_labels is not None for part in parts)
        return cls(
            np.concatenate([part.audio for part in parts]),
            np.concatenate([part.visual for part in parts]),
            np.concatenate([part.segment_labels for part in parts]) if with_labels else None,
            tuple(video_id for part in parts for video_id in part.video_ids),
        )


def make_videos(audio, visual, segment_labels=None, video_ids=None, source="arrays") -> Videos:
    """Checks shapes and builds ``Videos``; errors name ``source`` and the offending field.

    Without ``video_ids`` video i is ``video_i``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    visual = np.asarray(visual, dtype=np.float32)
    count = audio.shape[0] if audio.ndim else 0
    expected = {
        "audio": (audio, (count, ave.NUM_SEGMENTS, ave.AUDIO_DIM)),
        "visual": (visual, (count, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE)),
    }
    if segment_labels is not None:
        segment_labels = np.asarray(segment_labels).astype(np.int64)
        expected["segment_labels"] = (segment_labels, (count, ave.NUM_SEGMENTS))
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise VideoSourceError(
                f"{source}: field {name!r} has shape {array.shape}; {name} must have shape {shape}"
            )
    if segment_labels is not None and (
        segment_labels.min(initial=0) < 0 or segment_labels.max(initial=0) >= ave.NUM_CLASSES
    ):
        raise VideoSourceError(f"{source}: segment_labels must be in [0, {ave.NUM_CLASSES})")
    if video_ids is None:
        video_ids = [f"video_{i}" for i in range(count)]
    video_ids = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in video_ids)
    if len(video_ids) != count:
        raise VideoSourceError(f"{source}: {len(video_ids)} video_ids for {count} videos")
    return Videos(audio, visual, segment_labels, video_ids)


def _read_arrays(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
    """Every array of an ``.npz`` or HDF5 file by name (no pickles), and the file's attributes
    (HDF5; none for ``.npz``)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}, {}
        import h5py  # h5py: only for an .h5 features file

        with h5py.File(path, "r") as data:
            return {key: data[key][()] for key in data.keys()}, dict(data.attrs)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise VideoSourceError(f"{path}: cannot read it as {path.suffix}: {first_line}") from None


def read_features_file(path) -> Videos:
    """The videos of an ``.npz``/``.h5`` features file (see the module docstring)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise VideoSourceError(f"{path}: features file does not exist")
    if path.suffix not in FEATURES_SUFFIXES:
        raise VideoSourceError(f"{path}: a features file must end in .npz, .h5 or .hdf5")
    arrays, attributes = _read_arrays(path)
    for key in ("audio", "visual"):
        if key not in arrays:
            raise VideoSourceError(f"{path}: missing field {key!r} (has {sorted(arrays)})")
    audio, visual = arrays["audio"], arrays["visual"]
    labels = arrays.get("segment_labels")
    if np.ndim(audio) == 2 and np.ndim(visual) == 4:  # one video without the batch axis
        audio, visual = audio[np.newaxis], visual[np.newaxis]
        labels = None if labels is None else np.asarray(labels)[np.newaxis]
    ids = arrays.get("video_ids", arrays.get("video_id"))
    if ids is None:
        ids = [f"{path.stem}[{i}]" for i in range(np.shape(audio)[0] if np.ndim(audio) else 0)]
    videos = make_videos(audio, visual, labels, np.atleast_1d(ids), source=str(path))
    recipe = attributes.get("recipe_version")
    lowest = videos.audio.min(initial=0)
    if (recipe is None or recipe < RECIPE_VERSION) and lowest < 0:
        print(
            f"warning: {path}: negative audio features (min {lowest:.3g}), unlike VGGish's "
            f"after its fc2 ReLU (the AVE release; ave_tf.extract recipe {RECIPE_VERSION}); "
            f"if an older ave_tf.extract wrote it, np.maximum(audio, 0) makes it recipe "
            f"{RECIPE_VERSION} exactly",
            file=sys.stderr,
        )
    return videos


def parse_split_spec(spec: str) -> tuple[str, str]:
    """``"tfds_ave/<config>:<split>"`` -> ``(config, split)``; anything else is refused."""
    prefix, sep, split = spec.partition(":")
    dataset, _, config = prefix.partition("/")
    if dataset != "tfds_ave" or not sep or not config or not split:
        raise VideoSourceError(f"a split must look like {SPLIT_SPEC_EXAMPLE}; got {spec!r}")
    return config, split


def split_batches(
    dataset: str,
    split: str,
    batch_size: int,
    data_dir: str | None = None,
    manual_dir: str | None = None,
) -> Iterator[Videos]:
    """Streams a ``tfds_ave`` split in stored order as ``Videos`` of ``batch_size`` (the last
    may be smaller), building the dataset first if needed (``features`` needs ``manual_dir``).

    Raises:
        VideoSourceError: the config cannot be built, the split does not exist or is empty.
    """
    import tensorflow_datasets as tfds  # TFDS, TensorFlow: only for a split

    from ave_tf import data  # (imports TensorFlow)

    source = f"tfds_ave/{dataset.removeprefix('tfds_ave/')}:{split}"
    try:
        builder = data.prepare_builder(dataset, data_dir=data_dir, manual_dir=manual_dir)
    except data.DatasetUnavailableError as error:
        raise VideoSourceError(str(error)) from None
    try:
        examples = builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders=tfds.decode.PartialDecoding({name: True for name in _TFDS_FEATURES}),
        )
    except (ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise VideoSourceError(f"{source}: no split {split!r}: {first_line}") from None
    empty = True
    for batch in tfds.as_numpy(examples.batch(batch_size)):
        empty = False
        yield make_videos(
            batch["audio"], batch["visual"], batch["segment_labels"], batch["video_id"], source
        )
    if empty:
        raise VideoSourceError(f"{source}: the split is empty")


def read_split(
    dataset: str, split: str, data_dir: str | None = None, manual_dir: str | None = None
) -> Videos:
    """A whole ``tfds_ave`` split in memory (about 1 MB per video); see ``split_batches``."""
    return Videos.concatenate(list(split_batches(dataset, split, 64, data_dir, manual_dir)))
