"""ave_tf.data on the features config built from tfds_ave/dummy_data, and on arrays."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ave_tf import ave, data
from ave_tf.errors import UsageError
from ave_tf.testing.random_videos import random_splits
from tfds_ave import make_dummy_data

TRAIN, BACKGROUND = 8, 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def builder(data_dir):
    return data.prepare_builder(
        "features", data_dir=data_dir, manual_dir=str(make_dummy_data.DUMMY_DATA)
    )


def _direct(builder, split):
    """Examples read straight from TFDS, in stored order."""
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def _epochs(stream, epochs):
    """The stream's first `epochs` epochs as lists of numpy (inputs, targets) batches."""
    batches = list(tfds.as_numpy(stream.dataset.take(epochs * stream.steps_per_epoch)))
    steps = stream.steps_per_epoch
    return [batches[e * steps : (e + 1) * steps] for e in range(epochs)]


def _concat(batches, part, name):
    return np.concatenate([batch[part][name] for batch in batches])


def test_prepare_builder_reuses_a_built_dataset(builder, data_dir):
    again = data.prepare_builder("tfds_ave/features", data_dir=data_dir)  # no manual_dir needed
    assert again.is_prepared()
    assert again.info.splits["train"].num_examples == TRAIN


def test_prepare_builder_errors(tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match="unknown tfds_ave config 'nope'"):
        data.prepare_builder("nope", data_dir=str(tmp_path))
    with pytest.raises(data.DatasetUnavailableError, match="no manual_dir was given"):
        data.prepare_builder("features", data_dir=str(tmp_path))
    release = tmp_path / "release"
    release.mkdir()
    (release / "notes.txt").write_text("not the AVE release")
    with pytest.raises(data.DatasetUnavailableError, match="missing Annotations.txt") as error:
        data.prepare_builder("features", data_dir=str(tmp_path), manual_dir=str(release))
    assert "\n" not in str(error.value)
    assert isinstance(error.value, UsageError)
    empty = tmp_path / "empty"
    empty.mkdir()
    for manual_dir in (empty, tmp_path / "absent"):
        with pytest.raises(data.DatasetUnavailableError, match="does not exist or is empty"):
            data.prepare_builder("features", data_dir=str(tmp_path), manual_dir=str(manual_dir))


@pytest.mark.parametrize("split", ["train", "train[2:7]", "test"])
def test_fully_supervised_evaluation_equals_direct_reads(builder, split):
    direct = _direct(builder, split)
    batches = list(tfds.as_numpy(data.fully_supervised_dataset(builder, split, 3)))
    sizes = [len(inputs["audio"]) for inputs, _ in batches]
    assert sizes[:-1] == [3] * (len(sizes) - 1) and sum(sizes) == len(direct)  # keeps all
    np.testing.assert_array_equal(
        _concat(batches, 0, "audio"), np.stack([e["audio"] for e in direct])
    )
    np.testing.assert_array_equal(
        _concat(batches, 0, "visual"), np.stack([e["visual"] for e in direct])
    )
    labels = _concat(batches, 1, "segment_logits")
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.stack([e["segment_labels"] for e in direct]))
    np.testing.assert_array_equal(labels, _concat(batches, 1, "av_similarity"))


@pytest.mark.parametrize("with_background", [False, True])
def test_weakly_supervised_evaluation_equals_direct_reads(builder, with_background):
    dataset = data.weakly_supervised_dataset(builder, "train", 4, with_background=with_background)
    batches = list(tfds.as_numpy(dataset))
    direct = _direct(builder, "train")
    if with_background:
        direct += _direct(builder, "train_background")
    probabilities = _concat(batches, 1, "video_probabilities")
    assert probabilities.dtype == np.float32
    np.testing.assert_array_equal(probabilities, np.stack([e["prob_label"] for e in direct]))
    np.testing.assert_array_equal(
        _concat(batches, 0, "visual"), np.stack([e["visual"] for e in direct])
    )


def test_unknown_split_is_a_usage_error(builder):
    with pytest.raises(UsageError, match="has no split 'nope'"):
        data.fully_supervised_dataset(builder, "nope", 3)


@pytest.mark.parametrize("in_memory", [False, True])
def test_training_epochs_are_full_permutations(builder, data_dir, in_memory):
    source = data.TfdsSource("features", "fully", data_dir=data_dir, in_memory=in_memory)
    stream = source.training("train", 3, seed=1)
    assert (stream.steps_per_epoch, stream.examples_per_epoch) == (2, 6)  # remainder dropped
    inputs_spec, targets_spec = stream.dataset.element_spec
    assert inputs_spec["visual"].shape.as_list() == [3, 10, 7, 7, 512]
    assert targets_spec["segment_logits"].shape.as_list() == [3, 10]
    stored = np.stack([e["audio"] for e in _direct(builder, "train")]).reshape(TRAIN, -1)
    orders = []
    for batches in _epochs(stream, 4):
        audio = _concat(batches, 0, "audio").reshape(6, -1)
        rows = [int(np.flatnonzero((stored == row).all(axis=1))[0]) for row in audio]
        assert len(set(rows)) == 6  # 6 distinct videos of the 8
        labels = _concat(batches, 1, "segment_logits")
        expected = np.stack([e["segment_labels"] for e in _direct(builder, "train")])[rows]
        np.testing.assert_array_equal(labels, expected)
        orders.append(tuple(rows))
    assert len(set(orders)) > 1, "the training split is not reshuffled between epochs"


def test_training_order_is_the_per_seed_epoch_shuffle_of_the_stored_order(builder, data_dir):
    """Epoch e is exactly what shuffling the stored examples with seed f(seed, e) gives (the
    order of the trainers before indices were permuted instead of examples)."""
    source = data.TfdsSource("features", "fully", data_dir=data_dir)
    seed, batch = 7, 4
    stream = source.training("train", batch, seed=seed, initial_epoch=3)
    stored = [e["audio"] for e in _direct(builder, "train")]
    for epoch, batches in zip((3, 4), _epochs(stream, 2), strict=True):
        expected = tf.data.Dataset.from_tensor_slices(np.stack(stored)).shuffle(
            TRAIN, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False
        )
        expected = np.stack(list(tfds.as_numpy(expected)))[: 2 * batch]
        np.testing.assert_array_equal(_concat(batches, 0, "audio"), expected)


def test_resumed_stream_equals_the_uninterrupted_one_in_memory_or_streamed(data_dir):
    streamed = data.TfdsSource("features", "fully", data_dir=data_dir)
    cached = data.TfdsSource("features", "fully", data_dir=data_dir, in_memory=True)
    whole = _epochs(streamed.training("train", 4, seed=3), 5)[2:]
    for source in (streamed, cached):
        resumed = _epochs(source.training("train", 4, seed=3, initial_epoch=2), 3)
        for a, b in zip(whole, resumed, strict=True):
            np.testing.assert_array_equal(_concat(a, 0, "visual"), _concat(b, 0, "visual"))
    other_seed = _epochs(streamed.training("train", 4, seed=4, initial_epoch=2), 3)
    assert any(
        not np.array_equal(_concat(a, 0, "audio"), _concat(b, 0, "audio"))
        for a, b in zip(whole, other_seed, strict=True)
    )


def test_weak_training_set_includes_the_background_videos(builder, data_dir):
    source = data.TfdsSource("features", "weakly", data_dir=data_dir)
    stream = source.training("train", TRAIN + BACKGROUND, seed=0)
    ((batch,),) = _epochs(stream, 1)
    inputs, targets = batch
    assert targets["video_probabilities"].shape == (10, 29)
    expected = _direct(builder, "train") + _direct(builder, "train_background")
    assert sorted(inputs["audio"].sum(axis=(1, 2)).round(3).tolist()) == sorted(
        e["audio"].sum().round(3) for e in expected
    )
    all_background = (targets["segment_logits"] == ave.BACKGROUND).all(axis=1)
    assert all_background.sum() >= BACKGROUND
    np.testing.assert_array_equal(
        targets["video_probabilities"][:, ave.BACKGROUND] == 1.0, all_background
    )
    # Evaluation of the weak model reads the split without the background videos.
    assert sum(len(b[0]["audio"]) for b in tfds.as_numpy(source.evaluation("train", 4))) == TRAIN


def test_in_memory_source_round_trips_arrays():
    splits = random_splits({"train": 5, "test": 3}, seed=2)
    audio, visual, labels = splits["test"]
    for setting in data.SETTINGS:
        source = data.InMemorySource(setting, splits)
        batches = list(tfds.as_numpy(source.evaluation("test", 2)))
        np.testing.assert_array_equal(_concat(batches, 0, "audio"), audio)
        np.testing.assert_array_equal(_concat(batches, 0, "visual"), visual)
        np.testing.assert_array_equal(_concat(batches, 1, "segment_logits"), labels)
    # The weak target: the share of the 10 segments in each class.
    probabilities = _concat(batches, 1, "video_probabilities")
    for row, video_labels in zip(probabilities, labels, strict=True):
        expected = np.bincount(video_labels, minlength=ave.NUM_CLASSES) / ave.NUM_SEGMENTS
        np.testing.assert_allclose(row, expected, rtol=1e-6)
    with pytest.raises(UsageError, match="unknown split 'validation'"):
        source.evaluation("validation", 2)
    with pytest.raises(UsageError, match="fewer than one batch"):
        source.training("train", 6, seed=0)
    with pytest.raises(UsageError, match="setting must be one of"):
        data.InMemorySource("strongly", splits)


def test_truncated_record_file_is_named(tmp_path):
    path = tmp_path / "split.tfrecord-00000-of-00001"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"x" * 100)
        writer.write(b"y" * 100)
    locations = data._tfrecord_offsets(str(path))
    assert [length for _, _, length in locations] == [100, 100]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UsageError, match=f"{path}: not a TFRecord file or truncated"):
        data._tfrecord_offsets(str(path))


def test_pipeline_runs_inside_a_tf_function(builder):
    dataset = data.fully_supervised_dataset(builder, "test", 2)

    @tf.function
    def count_segments(ds):
        return ds.reduce(tf.constant(0), lambda n, pair: n + tf.size(pair[1]["segment_logits"]))

    assert int(count_segments(dataset)) == 10


def test_batches_are_gathered_into_aligned_arrays():
    """Each batch is one copy of the videos, aligned so that TensorFlow takes it over as is."""
    audio, visual, labels = random_splits({"train": 5}, seed=3)["train"]
    store = data.VideoStore.from_arrays(audio, visual, labels)
    indices = np.array([4, 0, 2])
    batch = dict(zip(("audio", "visual", "segment_labels"), store.take(indices), strict=False))
    for array in batch.values():
        assert array.ctypes.data % data._ALIGNMENT == 0
    np.testing.assert_array_equal(batch["audio"], audio[indices])
    np.testing.assert_array_equal(batch["visual"], visual[indices])
    np.testing.assert_array_equal(batch["segment_labels"], labels[indices])
    # In memory the gather does not wrap or clip an index outside the split: it refuses it.
    for outside in ([0, 5], [-1, 2]):
        with pytest.raises(IndexError, match=r"outside \[0, 5\)"):
            store.take(np.array(outside))


def test_a_record_that_is_not_a_tfds_ave_example_is_named(tmp_path):
    path = tmp_path / "split.tfrecord-00000-of-00001"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tf.train.Example().SerializeToString())  # no features
        writer.write(b"\xff" * 16)  # not a protocol buffer
    store = data.VideoStore(data._tfrecord_offsets(str(path)))
    for index in range(2):
        with pytest.raises(UsageError, match=f"{path}: the record at byte .* is not a tfds_ave"):
            store.take(np.array([index]))
