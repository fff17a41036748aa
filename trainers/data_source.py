"""Where the trainers get their batches: the TFDS `ave` pipelines, or arrays in memory.

Both sources give `(inputs, targets)` batches with the model contract's names:
inputs ``{"audio": (B, 10, 128), "visual": (B, 10, 7, 7, 512)}``; targets
fully ``{"segment_logits", "av_similarity"}`` (segment labels (B, 10) int32), weakly
``{"video_probabilities": (B, 29) float32, "segment_logits": (B, 10) int32}``.

The training stream's epoch order is a function of (seed, epoch) only (`epoch_stream`), so a
run resumed at epoch k sees the batches an uninterrupted run would have seen.
"""

import numpy as np
import tensorflow as tf

from ave_tf import ave
from ave_tf.errors import UsageError


class TrainingStream:
    """An endless training dataset plus its epoch geometry."""

    def __init__(self, dataset, steps_per_epoch, examples_per_epoch):
        self.dataset = dataset
        self.steps_per_epoch = int(steps_per_epoch)
        self.examples_per_epoch = int(examples_per_epoch)


def epoch_stream(examples, count, batch_size, seed, initial_epoch=0) -> TrainingStream:
    """Endless batches whose epoch e is `examples` shuffled by a seed made of (seed, e).

    Each epoch is a fresh `shuffle(count, seed=f(seed, e), reshuffle_each_iteration=False)`
    batched with `drop_remainder=True`, so the stream from epoch k on is the same whether a
    run started at 0 or resumed at k, and no matter how many iterators `fit` creates.

    Args:
        examples: unbatched `tf.data.Dataset` of (inputs, targets).
        count: number of examples (the shuffle buffer: a full shuffle).
        batch_size: global batch size.
        seed: the run's seed.
        initial_epoch: first epoch of the stream (resume).
    """
    steps = count // batch_size
    if steps < 1:
        raise UsageError(
            f"the training split has {count} videos, fewer than one batch ({batch_size}); "
            "lower --batch_size or use a larger split"
        )

    def one_epoch(epoch):
        epoch_seed = tf.cast(seed, tf.int64) * 1_000_003 + epoch
        return examples.shuffle(count, seed=epoch_seed, reshuffle_each_iteration=False).batch(
            batch_size, drop_remainder=True
        )

    dataset = tf.data.Dataset.range(initial_epoch, 2**62).flat_map(one_epoch)
    return TrainingStream(dataset.prefetch(tf.data.AUTOTUNE), steps, steps * batch_size)


class TfdsSource:
    """Batches from `ave_tf.data` (the TFDS `ave` configs).

    Args:
        config: a `TrainConfig` (dataset, data_dir, manual_dir and the split names).
    Raises:
        UsageError: the dataset config is not built and cannot be built (names what is missing).
    """

    def __init__(self, config):
        from ave_tf import data

        self.config = config
        self.setting = config.setting
        try:
            self.builder = data.prepare_builder(
                config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir
            )
        except data.DatasetUnavailableError as error:
            raise UsageError(str(error)) from None
        self._dataset_fn = (
            data.fully_supervised_dataset
            if self.setting == "fully"
            else data.weakly_supervised_dataset
        )

    def training(self, split, batch_size, seed, initial_epoch=0) -> TrainingStream:
        # The pipeline's evaluation mode (stored order, every video, cached in memory),
        # unbatched and re-shuffled per epoch by `epoch_stream`; the weak training set adds
        # the background-only videos as the pipeline's training mode does.
        extra = {"with_background": True} if self.setting == "weakly" else {}
        examples = self._dataset_fn(
            self.builder, split, batch_size, training=False, cache=True, **extra
        ).unbatch()
        count = int(examples.cardinality())
        if count < 0:
            count = int(examples.reduce(0, lambda n, _: n + 1))
        return epoch_stream(examples, count, batch_size, seed, initial_epoch)

    def evaluation(self, split, batch_size):
        return self._dataset_fn(self.builder, split, batch_size, training=False)


def targets_for(setting, segment_labels):
    """The contract's target dict for `setting` from segment labels (N, 10) int."""
    segment_labels = np.asarray(segment_labels, np.int32)
    if setting == "fully":
        return {"segment_logits": segment_labels, "av_similarity": segment_labels}
    one_hot = np.eye(ave.NUM_CLASSES, dtype=np.float32)[segment_labels]
    return {"video_probabilities": one_hot.mean(axis=1), "segment_logits": segment_labels}


class InMemorySource:
    """Batches from NumPy arrays held in memory (tests, benchmarks, resident training sets).

    Args:
        setting: "fully" or "weakly".
        splits: split name -> (audio (N, 10, 128), visual (N, 10, 7, 7, 512),
            segment_labels (N, 10) int).
    """

    def __init__(self, setting, splits):
        self.setting = setting
        self.splits = splits
        self.reads = []  # Split names in the order datasets were requested.

    def _tensors(self, split):
        self.reads.append(split)
        if split not in self.splits:
            raise UsageError(f"unknown split {split!r}; have {sorted(self.splits)}")
        audio, visual, labels = self.splits[split]
        inputs = {"audio": np.asarray(audio, np.float32), "visual": np.asarray(visual, np.float32)}
        return inputs, targets_for(self.setting, labels)

    def training(self, split, batch_size, seed, initial_epoch=0) -> TrainingStream:
        inputs, targets = self._tensors(split)
        examples = tf.data.Dataset.from_tensor_slices((inputs, targets))
        return epoch_stream(examples, len(inputs["audio"]), batch_size, seed, initial_epoch)

    def evaluation(self, split, batch_size):
        inputs, targets = self._tensors(split)
        return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch_size)


def random_splits(sizes, seed=0):
    """Random arrays in the contract's shapes with a learnable label signal.

    Each video gets a category c and an event window; event segments carry c's pattern in
    audio and visual features, background segments label 28.
    """
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(ave.NUM_CLASSES, ave.AUDIO_DIM)).astype(np.float32)
    visual_patterns = rng.normal(size=(ave.NUM_CLASSES, ave.VISUAL_SHAPE[-1])).astype(np.float32)
    splits = {}
    for name, count in sizes.items():
        category = rng.integers(0, ave.BACKGROUND, size=count)
        start = rng.integers(0, 5, size=count)
        end = start + rng.integers(2, 6, size=count)
        t = np.arange(ave.NUM_SEGMENTS)[None]
        event = (t >= start[:, None]) & (t < end[:, None])
        labels = np.where(event, category[:, None], ave.BACKGROUND).astype(np.int32)
        audio = rng.random((count, ave.NUM_SEGMENTS, ave.AUDIO_DIM), np.float32)
        audio += patterns[labels]
        visual = rng.random((count, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), np.float32)
        visual += visual_patterns[labels][:, :, None, None, :]
        splits[name] = (np.maximum(audio, 0), np.maximum(visual, 0), labels)
    return splits
