"""Input pipelines: TFDS ``tfds_ave`` splits as ``(inputs, targets)`` datasets for ``fit``.

    builder = prepare_builder("synthetic")            # builds it once, then reuses it
    train = fully_supervised_dataset(builder, "train", 128, training=True)
    model.fit(train, ...)

Inputs are ``{"audio": (batch, 10, 128) float32, "visual": (batch, 10, 7, 7, 512) float32}``;
the targets are keyed by the model outputs that the losses and metrics of
``ave_tf.models.training_objectives`` read (see each function).
"""

import os

import tensorflow as tf
import tensorflow_datasets as tfds

DATASET = "tfds_ave"
TRAIN_BACKGROUND = "train_background"
DEFAULT_SHUFFLE_BUFFER = 256
"""Videos held by the shuffle buffer when the split is not cached (one video is ~1 MB)."""

_FEATURES = ("audio", "visual", "segment_labels", "prob_label")


class DatasetUnavailableError(RuntimeError):
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
            "given: pass the folder of the AVE release (README, section Data)"
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


def _examples(
    builder: tfds.core.DatasetBuilder,
    split: str,
    *,
    training: bool,
    cache: bool,
    seed: int | None,
    shuffle_buffer: int | None,
) -> tf.data.Dataset:
    """Decoded examples holding only the features the pipelines use, shuffled when training."""
    read_config = tfds.ReadConfig(
        shuffle_seed=seed,
        shuffle_reshuffle_each_iteration=True,
        try_autocache=False,
    )
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=training,
        read_config=read_config,
        decoders=tfds.decode.PartialDecoding({name: True for name in _FEATURES}),
    )
    if cache:
        dataset = dataset.cache()
    if training:
        if shuffle_buffer is None:
            shuffle_buffer = (
                builder.info.splits[split].num_examples if cache else DEFAULT_SHUFFLE_BUFFER
            )
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset


def _pipeline(dataset, to_pair, batch_size: int, training: bool) -> tf.data.Dataset:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    dataset = dataset.batch(batch_size, drop_remainder=training)
    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _inputs(batch) -> dict[str, tf.Tensor]:
    return {"audio": batch["audio"], "visual": batch["visual"]}


def fully_supervised_dataset(
    builder: tfds.core.DatasetBuilder,
    split: str,
    batch_size: int,
    *,
    training: bool,
    cache: bool = False,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """``(inputs, targets)`` batches for the fully supervised model.

    Args:
        builder: a prepared ``tfds_ave`` builder (``prepare_builder``).
        split: a TFDS split, slicing allowed (``"train"``, ``"test"``, ``"train[:64]"``).
        batch_size: the GLOBAL batch size (the official 128): under a
            ``tf.distribute`` strategy, ``fit`` splits each batch across the replicas.
        training: reshuffle every epoch and drop the last partial batch (the official
            loader); ``False`` keeps the stored order and every video.
        cache: keep the decoded split in memory after the first epoch (about 1 MB per video;
            the training split of AVE takes about 3.4 GB). With a cache, the shuffle covers
            the whole split.
        seed: seed of the file and example shuffles (``None``: random).
        shuffle_buffer: videos in the shuffle buffer; default the whole split when cached,
            else ``DEFAULT_SHUFFLE_BUFFER`` (the stored order is already a random
            permutation, and the shard order is reshuffled every epoch).

    Returns:
        A dataset of ``({"audio": (B, 10, 128) f32, "visual": (B, 10, 7, 7, 512) f32},
        {"segment_logits": (B, 10) int32, "av_similarity": (B, 10) int32})``; both targets
        are the segment labels (the AVPS loss derives its per-video target from them).
        Ends with ``prefetch(AUTOTUNE)``.
    """
    examples = _examples(
        builder, split, training=training, cache=cache, seed=seed, shuffle_buffer=shuffle_buffer
    )

    def to_pair(batch):
        labels = tf.cast(batch["segment_labels"], tf.int32)
        return _inputs(batch), {"segment_logits": labels, "av_similarity": labels}

    return _pipeline(examples, to_pair, batch_size, training)


def weakly_supervised_dataset(
    builder: tfds.core.DatasetBuilder,
    split: str,
    batch_size: int,
    *,
    training: bool,
    cache: bool = False,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
    with_background: bool | None = None,
) -> tf.data.Dataset:
    """``(inputs, targets)`` batches for the weakly supervised model.

    Arguments as ``fully_supervised_dataset``, plus:
        with_background: add the ``train_background`` split (the 178 background-only
            videos) to a ``train`` split; default: when ``training`` (the official weak
            training set is train + background videos). Ignored when the builder has no
            ``train_background`` split.

    Returns:
        A dataset of ``({"audio", "visual"}, {"video_probabilities": (B, 29) float32
        prob_label, "segment_logits": (B, 10) int32 segment labels})``; the segment labels
        only feed the accuracy metric. Ends with ``prefetch(AUTOTUNE)``.
    """
    if with_background is None:
        with_background = training
    split = _split_for(builder, split, with_background)
    examples = _examples(
        builder, split, training=training, cache=cache, seed=seed, shuffle_buffer=shuffle_buffer
    )

    def to_pair(batch):
        targets = {
            "video_probabilities": tf.cast(batch["prob_label"], tf.float32),
            "segment_logits": tf.cast(batch["segment_labels"], tf.int32),
        }
        return _inputs(batch), targets

    return _pipeline(examples, to_pair, batch_size, training)
