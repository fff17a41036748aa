"""What the figures read: videos (a TFDS split or a features file) and a trained model.

videos = load_features_file("features.npz")        # or load_split("synthetic", "test[:8]")
model = load_inspectable_model("model.keras")      # the network plus its internals
outputs = run_model(model, videos, batch_size=8)   # dict of NumPy arrays
"""

import dataclasses
import pathlib

import numpy as np

from ave_tf import ave


class SourceError(ValueError):
    """A model, features file or split cannot be used; the message names it and why."""


@dataclasses.dataclass(frozen=True)
class Videos:
    """A batch of AVE videos.

    Attributes:
        audio: (videos, 10, 128) float32 audio features.
        visual: (videos, 10, 7, 7, 512) float32 visual maps.
        segment_labels: (videos, 10) int class per segment, or None when unknown.
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
            raise SourceError(f"video index {bad[0]} out of range: there are {len(self)} videos")
        labels = None if self.segment_labels is None else self.segment_labels[indices]
        return Videos(
            self.audio[indices],
            self.visual[indices],
            labels,
            tuple(self.video_ids[i] for i in indices),
        )


def make_videos(audio, visual, segment_labels=None, video_ids=None, source="arrays") -> Videos:
    """Checks shapes and builds ``Videos``; errors name ``source`` and the offending array."""
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
            raise SourceError(f"{source}: {name} must have shape {shape}; got {array.shape}")
    if segment_labels is not None and (
        segment_labels.min(initial=0) < 0 or segment_labels.max(initial=0) >= ave.NUM_CLASSES
    ):
        raise SourceError(f"{source}: segment_labels must be in [0, {ave.NUM_CLASSES})")
    if video_ids is None:
        video_ids = [f"video_{i}" for i in range(count)]
    video_ids = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in video_ids)
    if len(video_ids) != count:
        raise SourceError(f"{source}: {len(video_ids)} video_ids for {count} videos")
    return Videos(audio, visual, segment_labels, video_ids)


def load_features_file(path) -> Videos:
    """Reads an ``.npz`` or ``.h5`` file with ``audio``, ``visual`` and optionally
    ``segment_labels`` (videos, 10) and ``video_ids``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise SourceError(f"features file {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as data:
            arrays = {key: data[key][()] for key in data.keys()}
    else:
        raise SourceError(f"features file {path} must end in .npz, .h5 or .hdf5")
    for key in ("audio", "visual"):
        if key not in arrays:
            raise SourceError(f"features file {path} has no {key!r} array; has {sorted(arrays)}")
    return make_videos(
        arrays["audio"],
        arrays["visual"],
        arrays.get("segment_labels"),
        arrays.get("video_ids"),
        source=str(path),
    )


def load_split(
    dataset: str, split: str, data_dir: str | None = None, manual_dir: str | None = None
) -> Videos:
    """Reads a ``tfds_ave`` split (e.g. ``load_split("synthetic", "test[:8]")``), in order,
    building the dataset first if needed (``features`` needs ``manual_dir``)."""
    try:
        from ave_tf import data
    except ImportError as error:
        raise SourceError(
            f"cannot read the TFDS split {dataset}:{split}: ave_tf.data is unavailable ({error})"
        ) from error
    import tensorflow_datasets as tfds

    try:
        builder = data.prepare_builder(dataset, data_dir=data_dir, manual_dir=manual_dir)
    except data.DatasetUnavailableError as error:
        raise SourceError(str(error)) from error
    try:
        examples = builder.as_dataset(split=split, shuffle_files=False)
    except (ValueError, KeyError) as error:
        raise SourceError(f"tfds_ave/{dataset} has no split {split!r}: {error}") from error
    rows = list(tfds.as_numpy(examples))
    if not rows:
        raise SourceError(f"tfds_ave/{dataset} split {split!r} is empty")
    return make_videos(
        np.stack([row["audio"] for row in rows]),
        np.stack([row["visual"] for row in rows]),
        np.stack([row["segment_labels"] for row in rows]),
        [row["video_id"] for row in rows],
        source=f"tfds_ave/{dataset}:{split}",
    )


def is_saved_model(path) -> bool:
    """Whether ``path`` is a TensorFlow SavedModel folder."""
    return (pathlib.Path(path) / "saved_model.pb").is_file()


def resolve_saved_model(path) -> pathlib.Path:
    """A SavedModel folder; a folder of integer versions (``<export_dir>/<name>``) gives the
    newest version."""
    from ave_tf.export import saved_model_versions

    path = pathlib.Path(path)
    if is_saved_model(path):
        return path
    versions = saved_model_versions(path)
    if not versions:
        raise SourceError(f"{path} is neither a SavedModel nor a folder of SavedModel versions")
    return path / str(versions[-1])


def load_keras_model(path):
    """Loads a ``.keras`` file (registering ave_tf's custom objects first)."""
    import keras

    import ave_tf.models  # noqa: F401  (registers the custom layers)

    path = pathlib.Path(path)
    if path.suffix != ".keras" or not path.is_file():
        raise SourceError(
            f"{path} is not a .keras file; the internals (attention, beta/gamma, features) "
            "are only available from a .keras model"
        )
    return keras.models.load_model(path)


def load_inspectable_model(path):
    """A ``.keras`` model rebuilt with its internals as outputs (``expose_internals``)."""
    from ave_tf.models import expose_internals

    return expose_internals(load_keras_model(path))


def run_model(model, videos: Videos, batch_size: int = 16) -> dict[str, np.ndarray]:
    """All outputs of ``model`` on ``videos`` as NumPy arrays keyed by output name."""
    outputs = model.predict(videos.inputs, batch_size=batch_size, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}


def predict_segments(path, videos: Videos, batch_size: int = 16) -> dict[str, np.ndarray]:
    """Per-segment predictions from a ``.keras`` model or a SavedModel.

    A SavedModel is called through its ``serving_default`` signature and must output
    ``segment_probabilities`` (and ``segment_classes`` when it has them).

    Returns:
        ``segment_probabilities`` (videos, 10, 29) and ``segment_classes`` (videos, 10).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        import tensorflow as tf

        folder = resolve_saved_model(path)
        signature = tf.saved_model.load(str(folder)).signatures.get("serving_default")
        if signature is None:
            raise SourceError(f"SavedModel {folder} has no 'serving_default' signature")
        chunks = []
        for start in range(0, len(videos), batch_size):
            part = videos.select(range(start, min(start + batch_size, len(videos))))
            result = signature(audio=tf.constant(part.audio), visual=tf.constant(part.visual))
            chunks.append({name: value.numpy() for name, value in result.items()})
        if "segment_probabilities" not in chunks[0]:
            raise SourceError(
                f"SavedModel {folder}: serving_default has no 'segment_probabilities' output; "
                f"has {sorted(chunks[0])}"
            )
        outputs = {
            name: np.concatenate([chunk[name] for chunk in chunks])
            for name in ("segment_probabilities", "segment_classes")
            if name in chunks[0]
        }
    else:
        outputs = run_model(load_keras_model(path), videos, batch_size)
    probabilities = outputs["segment_probabilities"]
    classes = outputs.get("segment_classes")
    if classes is None:
        classes = probabilities.argmax(-1)
    return {"segment_probabilities": probabilities, "segment_classes": classes.astype(np.int64)}
