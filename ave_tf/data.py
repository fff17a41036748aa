"""Input pipelines: ``tfds_ave`` splits (or arrays in memory) as ``(inputs, targets)`` batches.

    source = TfdsSource("synthetic", "fully")              # builds the config once if needed
    stream = source.training("train", 128, seed=1)         # endless; see `TrainingStream`
    model.fit(stream.dataset, epochs=300, steps_per_epoch=stream.steps_per_epoch, shuffle=False)
    model.evaluate(source.evaluation("test", 128))

Inputs are ``{"audio": (B, 10, 128) float32, "visual": (B, 10, 7, 7, 512) float32}``; targets
are keyed by the model outputs that ``ave_tf.models.training_objectives`` reads:
fully supervised ``{"segment_logits", "av_similarity"}`` (both the segment labels (B, 10)
int32), weakly supervised ``{"video_probabilities": prob_label (B, 29) float32,
"segment_logits": (B, 10) int32}``.

One pipeline serves training and evaluation, for TFDS and in-memory data alike: a
`VideoStore` holds a split's videos, addressable by index (on disk: the offsets of the
TFRecords TFDS wrote, each record parsed when read; in memory: one copy of the decoded
arrays), and every batch is a batch of indices -> the videos copied once into new arrays that
TensorFlow takes over without copying them again. Training permutes indices, never examples,
so no shuffle buffer holds a second copy of the data.

The pipeline reads no batch ahead: a batch is gathered when the step asks for it (~2% of a CPU
training step at batch 128), so one batch (128 MB at batch 128) is in flight. The trainers
hand it to ``fit`` and ``evaluate`` through ``trainers.distribution.feed``, which on CPUs also
turns off the ``tf.distribute`` iterator's own read-ahead (one batch on the host, one per
device). To overlap the gather with the step, add ``.prefetch(1)`` (one more batch held).
"""

import dataclasses
import os
import struct
import threading

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from google.protobuf import message as protobuf_message

from ave_tf import ave
from ave_tf.errors import UsageError

DATASET = "tfds_ave"
TRAIN_BACKGROUND = "train_background"
SETTINGS = ("fully", "weakly")

# The four features a batch holds: per video shape and dtype. ``tfds_ave``'s builder
# serializes the float32 tensors as raw little-endian bytes (``Encoding.BYTES``), the segment
# labels (a ``ClassLabel`` sequence) as int64, ``prob_label`` as a float list.
_FEATURES = {
    "audio": ((ave.NUM_SEGMENTS, ave.AUDIO_DIM), np.float32),
    "visual": ((ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), np.float32),
    "segment_labels": ((ave.NUM_SEGMENTS,), np.int32),
    "prob_label": ((ave.NUM_CLASSES,), np.float32),
}
_ALIGNMENT = 64
"""Byte alignment of batch arrays: ``tf.numpy_function`` hands an array aligned like this to
TensorFlow as is; a less aligned one it copies (another 128 MB per batch)."""
_TFRECORD_HEADER = struct.Struct("<QI")  # record length, masked CRC of the length


class DatasetUnavailableError(UsageError):
    """The requested tfds_ave config is not built and cannot be built; the message says why."""


def _config_name(name: str) -> str:
    prefix = DATASET + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def prepare_builder(
    name: str = "synthetic", data_dir: str | None = None, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    """Returns the builder of a ``tfds_ave`` config, building the dataset first if needed.

    Args:
        name: the config: ``synthetic``, ``synthetic_full`` or ``features`` (a leading
            ``tfds_ave/`` is accepted).
        data_dir: TFDS data directory (default: TFDS's, ``~/tensorflow_datasets``).
        manual_dir: the AVE release folder; needed to build ``features``.

    Raises:
        DatasetUnavailableError: one line naming what is missing (unknown config, no
            ``manual_dir``, a missing or invalid release file); the original error is chained.
    """
    import tfds_ave  # noqa: F401  (registers the builder)

    config = _config_name(name)
    known = [known_config.name for known_config in tfds_ave.Builder.BUILDER_CONFIGS]
    if config not in known:
        raise DatasetUnavailableError(
            f"unknown {DATASET} config {name!r}; expected one of {', '.join(known)}"
        )
    builder = tfds.builder(DATASET, config=config, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if config == "features" and manual_dir is None:
        raise DatasetUnavailableError(
            f"{DATASET}/features is not built in {builder.data_dir} and no manual_dir was "
            "given: pass the folder of the AVE release (docs/data.md)"
        )
    if manual_dir is not None and (not os.path.isdir(manual_dir) or not os.listdir(manual_dir)):
        # TFDS raises a bare AssertionError for this case; say it in one line.
        raise DatasetUnavailableError(
            f"manual_dir {manual_dir} does not exist or is empty: it must hold the AVE "
            "release files (Annotations.txt, audio_feature.h5, visual_feature.h5, "
            "train_order.h5, val_order.h5, test_order.h5)"
        )
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    try:
        builder.download_and_prepare(download_config=download_config)
    except (ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise DatasetUnavailableError(f"cannot build {DATASET}/{config}: {first_line}") from error
    return builder


def _split_for(builder: tfds.core.DatasetBuilder, split: str, with_background: bool) -> str:
    """Adds ``train_background`` to a ``train`` split (slicing kept) when asked and present."""
    if not with_background or TRAIN_BACKGROUND not in builder.info.splits:
        return split
    parts = [part.strip() for part in split.split("+")]
    bases = {part.split("[")[0] for part in parts}
    if "train" in bases and TRAIN_BACKGROUND not in bases:
        return split + "+" + TRAIN_BACKGROUND
    return split


class VideoStore:
    """A split's videos, read by index as batches of arrays.

    ``TfdsSource`` makes one per split from the TFRecords TFDS wrote: ``streamed`` reads and
    parses each record from disk when asked (only the offsets are held: 16 bytes per video),
    otherwise every record is parsed once into arrays held in memory (one copy of the split,
    ~1 MB per video). ``InMemorySource`` makes one from arrays (``from_arrays``). Video ``i``
    is the ``i``-th example of the split in TFDS's stored order
    (``as_dataset(shuffle_files=False)``).
    """

    def __init__(
        self, locations: list[tuple[str, int, int]], arrays: dict[str, np.ndarray] | None = None
    ):
        """Use ``from_tfds`` or ``from_arrays``.

        Args:
            locations: per record ``(file, offset of the payload, length)``; empty when
                ``arrays`` holds the videos.
            arrays: feature name (``_FEATURES``) -> (N, ...) array, or ``None`` to read
                ``locations`` on demand.
        """
        self._locations = locations
        self._arrays = arrays
        self._files: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_tfds(
        cls, builder: tfds.core.DatasetBuilder, split: str, streamed: bool
    ) -> "VideoStore":
        """The videos of ``split`` (slicing and ``+`` allowed) of a prepared TFRecord build.

        Raises:
            UsageError: the build is not TFRecord (e.g. ``--file_format=array_record``) or a
                file is truncated, not a TFRecord file or holds another kind of example (the
                message names it).
        """
        file_format = builder.info.file_format
        if file_format is not None and file_format.value != "tfrecord":
            raise UsageError(
                f"{builder.data_dir} holds {DATASET} as {file_format.value}; ave_tf.data "
                "reads the TFRecord files TFDS writes by default: rebuild without --file_format"
            )
        try:
            instructions = builder.info.splits[split].file_instructions
        except (KeyError, ValueError) as error:
            known = ", ".join(builder.info.splits)
            raise UsageError(
                f"{builder.info.full_name} has no split {split!r} (splits: {known}; TFDS "
                f"slicing such as train[:64] is allowed): {str(error).splitlines()[0]}"
            ) from None
        locations = []
        for instruction in instructions:
            offsets = _tfrecord_offsets(instruction.filename)
            locations += offsets[instruction.skip : instruction.skip + instruction.take]
        store = cls(locations)
        if streamed:
            return store
        arrays = dict(zip(_FEATURES, store.take(np.arange(len(locations))), strict=True))
        store._close()
        return cls([], arrays)

    @classmethod
    def from_arrays(cls, audio, visual, segment_labels) -> "VideoStore":
        """A store of videos given as arrays (not copied when already of the stored dtype).

        Args:
            audio: (N, 10, 128); visual: (N, 10, 7, 7, 512); segment_labels: (N, 10) int
                class ids. ``prob_label`` is derived (mean of the segment one-hots).
        """
        labels = np.asarray(segment_labels, np.int32)
        probs = np.eye(ave.NUM_CLASSES, dtype=np.float32)[labels].mean(axis=1)
        arrays = {
            "audio": np.asarray(audio, np.float32),
            "visual": np.asarray(visual, np.float32),
            "segment_labels": labels,
            "prob_label": probs,
        }
        return cls([], arrays)

    def __len__(self) -> int:
        if self._arrays is not None:
            return len(self._arrays["segment_labels"])
        return len(self._locations)

    def take(self, indices: np.ndarray) -> list[np.ndarray]:
        """The videos at ``indices`` (B,) int: one new (B, ...) array per feature, in the
        order of ``_FEATURES``, each 64-byte aligned (see ``_ALIGNMENT``)."""
        batch = {
            name: _aligned_empty((len(indices), *shape), dtype)
            for name, (shape, dtype) in _FEATURES.items()
        }
        if self._arrays is not None:
            if len(indices) and not 0 <= np.min(indices) <= np.max(indices) < len(self):
                raise IndexError(f"video indices outside [0, {len(self)}): {indices}")
            for name, values in batch.items():
                # mode="raise" (the default) writes into a temporary copy of ``out`` (another
                # 128 MB per batch); the indices are checked above, so "clip" never clips.
                np.take(self._arrays[name], indices, axis=0, out=values, mode="clip")
        else:
            for row, index in enumerate(indices):
                self._parse(int(index), batch, row)
        return list(batch.values())

    def _parse(self, index: int, batch: dict[str, np.ndarray], row: int) -> None:
        """Reads record ``index`` and writes its features into row ``row`` of ``batch``."""
        filename, offset, length = self._locations[index]
        record = os.pread(self._descriptor(filename), length, offset)
        if len(record) != length:
            raise UsageError(f"{filename}: truncated TFRecord file (record at byte {offset})")
        try:
            feature = tf.train.Example.FromString(record).features.feature
            for name in ("audio", "visual"):
                (raw,) = feature[name].bytes_list.value
                batch[name][row] = np.frombuffer(raw, "<f4").reshape(batch[name].shape[1:])
            batch["segment_labels"][row] = feature["segment_labels"].int64_list.value
            batch["prob_label"][row] = feature["prob_label"].float_list.value
        except (ValueError, protobuf_message.DecodeError) as error:
            raise UsageError(
                f"{filename}: the record at byte {offset} is not a {DATASET} example ({error})"
            ) from None

    def _descriptor(self, filename: str) -> int:
        with self._lock:
            if filename not in self._files:
                self._files[filename] = os.open(filename, os.O_RDONLY)
            return self._files[filename]

    def _close(self) -> None:
        for descriptor in self._files.values():
            os.close(descriptor)
        self._files.clear()

    def __del__(self):
        self._close()


def _aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array whose data starts at a multiple of ``_ALIGNMENT`` bytes."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


def _tfrecord_offsets(filename: str) -> list[tuple[str, int, int]]:
    """``(filename, payload offset, payload length)`` of every record of a TFRecord file.

    A record is ``length`` (uint64 LE), its masked CRC (4 bytes), the payload and the
    payload's masked CRC (4 bytes); only the headers are read.
    """
    try:
        size = os.path.getsize(filename)
        locations = []
        with open(filename, "rb") as handle:
            position = 0
            while position < size:
                header = handle.read(_TFRECORD_HEADER.size)
                if len(header) != _TFRECORD_HEADER.size:
                    raise UsageError(f"{filename}: truncated TFRecord header at byte {position}")
                (length, _) = _TFRECORD_HEADER.unpack(header)
                payload = position + _TFRECORD_HEADER.size
                position = payload + length + 4
                if position > size:
                    raise UsageError(
                        f"{filename}: not a TFRecord file or truncated (a record of {length} "
                        f"bytes at byte {payload - _TFRECORD_HEADER.size} runs past its end)"
                    )
                locations.append((filename, payload, length))
                handle.seek(position)
    except OSError as error:
        raise UsageError(f"{filename}: cannot read ({error.strerror})") from None
    return locations


@dataclasses.dataclass(frozen=True)
class TrainingStream:
    """An endless training dataset plus its epoch geometry.

    Attributes:
        dataset: ``(inputs, targets)`` batches; epoch ``e`` (``steps_per_epoch`` batches) is
            the split in a permutation that depends on ``(seed, e)`` only, so a run resumed at
            epoch ``k`` sees the batches an uninterrupted run would have seen.
        steps_per_epoch: full batches per epoch (the last partial batch is dropped, as the
            official loader does).
        examples_per_epoch: ``steps_per_epoch * batch_size``.
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    examples_per_epoch: int


def epoch_seed(seed: int, epoch) -> tf.Tensor:
    """The seed of epoch ``epoch``'s permutation: a function of (seed, epoch) only."""
    return tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)


def _targets(setting: str, videos: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    labels = videos["segment_labels"]
    if setting == "fully":
        return {"segment_logits": labels, "av_similarity": labels}
    return {"video_probabilities": videos["prob_label"], "segment_logits": labels}


def _batches(store: VideoStore, index_batches: tf.data.Dataset, setting: str) -> tf.data.Dataset:
    """``(inputs, targets)`` for each batch of video indices (the one pipeline's tail)."""
    dtypes = [tf.as_dtype(dtype) for _, dtype in _FEATURES.values()]

    def read(indices):
        arrays = tf.numpy_function(store.take, [indices], dtypes, stateful=False)
        videos = {}
        for (name, (shape, _)), array in zip(_FEATURES.items(), arrays, strict=True):
            array.set_shape([indices.shape[0], *shape])
            videos[name] = array
        inputs = {"audio": videos["audio"], "visual": videos["visual"]}
        return inputs, _targets(setting, videos)

    # No batch read ahead here (module doc): by default tf.data makes the (stateless) map
    # parallel and injects an autotuned prefetch, which held 2 more 128 MB batches.
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    return index_batches.map(read).with_options(options)


def training_stream(
    store: VideoStore, setting: str, batch_size: int, seed: int, initial_epoch: int = 0
) -> TrainingStream:
    """The training pipeline: endless batches, epoch ``e`` a (seed, e) permutation of ``store``.

    Each epoch is ``range(N).shuffle(N, seed=epoch_seed(seed, e))`` (a full, uniformly random
    permutation) batched with ``drop_remainder=True``; the permutation holds N indices, the
    examples are read by index. The stream from epoch ``k`` on is the same whether a run
    started at 0 or resumed at ``k``, however many iterators ``fit`` creates.

    Args:
        store: the training split's videos.
        setting: ``fully`` or ``weakly`` (which targets).
        batch_size: the GLOBAL batch size (under a ``tf.distribute`` strategy ``fit`` splits
            each batch across the replicas).
        seed: the run's seed.
        initial_epoch: first epoch of the stream (resume).

    Raises:
        UsageError: the split holds fewer videos than one batch.
    """
    count = len(store)
    steps = count // batch_size
    if steps < 1:
        raise UsageError(
            f"the training split has {count} videos, fewer than one batch ({batch_size}); "
            "lower --batch_size or use a larger split"
        )

    def one_epoch(epoch):
        order = tf.data.Dataset.range(count).shuffle(
            count, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False
        )
        return order.batch(batch_size, drop_remainder=True)

    index_batches = tf.data.Dataset.range(initial_epoch, 2**62).flat_map(one_epoch)
    return TrainingStream(_batches(store, index_batches, setting), steps, steps * batch_size)


def evaluation_batches(store: VideoStore, setting: str, batch_size: int) -> tf.data.Dataset:
    """Every video of ``store`` once, in stored order, the last batch possibly partial."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1; got {batch_size}")
    return _batches(store, tf.data.Dataset.range(len(store)).batch(batch_size), setting)


def fully_supervised_dataset(
    builder: tfds.core.DatasetBuilder, split: str, batch_size: int
) -> tf.data.Dataset:
    """Evaluation batches of a split for the fully supervised model, in stored order.

    Args:
        builder: a prepared ``tfds_ave`` builder (``prepare_builder``).
        split: a TFDS split, slicing allowed (``"test"``, ``"train[:64]"``).
        batch_size: videos per batch; the last batch holds the rest.

    Returns:
        ``({"audio", "visual"}, {"segment_logits", "av_similarity"})`` batches (module doc).
    """
    store = VideoStore.from_tfds(builder, split, streamed=True)
    return evaluation_batches(store, "fully", batch_size)


def weakly_supervised_dataset(
    builder: tfds.core.DatasetBuilder, split: str, batch_size: int, with_background: bool = False
) -> tf.data.Dataset:
    """Evaluation batches of a split for the weakly supervised model, in stored order.

    Arguments as ``fully_supervised_dataset``, plus ``with_background``: add the
    ``train_background`` split (the 178 background-only videos) to a ``train`` split.

    Returns:
        ``({"audio", "visual"}, {"video_probabilities", "segment_logits"})`` batches.
    """
    split = _split_for(builder, split, with_background)
    store = VideoStore.from_tfds(builder, split, streamed=True)
    return evaluation_batches(store, "weakly", batch_size)


def _check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise UsageError(f"setting must be one of {', '.join(SETTINGS)}; got {setting!r}")


class TfdsSource:
    """Training and evaluation batches of the ``tfds_ave`` configs: what the trainers read.

    Args:
        dataset: the config (``synthetic``, ``synthetic_full``, ``features``).
        setting: ``fully`` or ``weakly``; the weak training set adds ``train_background``
            (the official weak training set is train + the background-only videos).
        data_dir, manual_dir: as ``prepare_builder``.
        in_memory: hold the training split in memory (one copy, ~1 MB per video, read once
            per source and shared by every seed) instead of reading it from disk per batch.

    Raises:
        UsageError: the config is not built and cannot be built (names what is missing).
    """

    def __init__(
        self,
        dataset: str,
        setting: str,
        *,
        data_dir: str | None = None,
        manual_dir: str | None = None,
        in_memory: bool = False,
    ):
        _check_setting(setting)
        self.setting = setting
        self.in_memory = in_memory
        self.builder = prepare_builder(dataset, data_dir=data_dir, manual_dir=manual_dir)
        self._training_stores: dict[str, VideoStore] = {}

    def training(self, split, batch_size, seed, initial_epoch=0) -> TrainingStream:
        split = _split_for(self.builder, split, with_background=self.setting == "weakly")
        if split not in self._training_stores:
            self._training_stores[split] = VideoStore.from_tfds(
                self.builder, split, streamed=not self.in_memory
            )
        return training_stream(
            self._training_stores[split], self.setting, batch_size, seed, initial_epoch
        )

    def evaluation(self, split, batch_size) -> tf.data.Dataset:
        store = VideoStore.from_tfds(self.builder, split, streamed=True)
        return evaluation_batches(store, self.setting, batch_size)


class InMemorySource:
    """Batches of videos given as NumPy arrays (tests, benchmarks), through the same pipeline.

    Args:
        setting: ``fully`` or ``weakly``.
        splits: split name -> (audio (N, 10, 128), visual (N, 10, 7, 7, 512),
            segment_labels (N, 10) int).
    """

    def __init__(self, setting: str, splits: dict):
        _check_setting(setting)
        self.setting = setting
        self.splits = splits
        self.reads: list[str] = []  # Split names in the order datasets were requested.
        self._stores: dict[str, VideoStore] = {}

    def _store(self, split: str) -> VideoStore:
        self.reads.append(split)
        if split not in self.splits:
            raise UsageError(f"unknown split {split!r}; have {sorted(self.splits)}")
        if split not in self._stores:
            self._stores[split] = VideoStore.from_arrays(*self.splits[split])
        return self._stores[split]

    def training(self, split, batch_size, seed, initial_epoch=0) -> TrainingStream:
        return training_stream(self._store(split), self.setting, batch_size, seed, initial_epoch)

    def evaluation(self, split, batch_size) -> tf.data.Dataset:
        return evaluation_batches(self._store(split), self.setting, batch_size)
