"""Pipelines of ave_tf.data on the features config built from tfds_ave/dummy_data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ave_tf import ave, data
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


def _fingerprints(audio):
    return sorted(np.round(np.asarray(audio).reshape(len(audio), -1).sum(axis=1), 3).tolist())


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
    empty = tmp_path / "empty"
    empty.mkdir()
    for manual_dir in (empty, tmp_path / "absent"):
        with pytest.raises(data.DatasetUnavailableError, match="does not exist or is empty"):
            data.prepare_builder("features", data_dir=str(tmp_path), manual_dir=str(manual_dir))


@pytest.mark.parametrize("cache", [False, True])
def test_fully_supervised_eval_pipeline_equals_direct_reads(builder, cache):
    direct = _direct(builder, "train")
    dataset = data.fully_supervised_dataset(builder, "train", 3, training=False, cache=cache)
    batches = list(tfds.as_numpy(dataset))
    assert [len(inputs["audio"]) for inputs, _ in batches] == [3, 3, 2]  # eval keeps all
    audio = np.concatenate([inputs["audio"] for inputs, _ in batches])
    visual = np.concatenate([inputs["visual"] for inputs, _ in batches])
    labels = np.concatenate([targets["segment_logits"] for _, targets in batches])
    np.testing.assert_array_equal(audio, np.stack([e["audio"] for e in direct]))
    np.testing.assert_array_equal(visual, np.stack([e["visual"] for e in direct]))
    np.testing.assert_array_equal(labels, np.stack([e["segment_labels"] for e in direct]))
    for _, targets in batches:
        np.testing.assert_array_equal(targets["segment_logits"], targets["av_similarity"])


def test_fully_supervised_training_batches(builder):
    dataset = data.fully_supervised_dataset(builder, "train", 3, training=True, seed=1)
    inputs_spec, targets_spec = dataset.element_spec
    assert inputs_spec["audio"].shape.as_list() == [3, 10, 128]
    assert inputs_spec["visual"].shape.as_list() == [3, 10, 7, 7, 512]
    assert inputs_spec["visual"].dtype == tf.float32
    assert targets_spec["segment_logits"].shape.as_list() == [3, 10]
    assert targets_spec["segment_logits"].dtype == tf.int32
    epochs = [[b[0]["audio"] for b in tfds.as_numpy(dataset)] for _ in range(3)]
    assert all(len(batches) == 2 for batches in epochs)  # 8 videos: the partial batch is dropped
    everything = _fingerprints([e["audio"] for e in _direct(builder, "train")])
    orders = []
    for batches in epochs:
        audio = np.concatenate(batches)
        assert set(_fingerprints(audio)) <= set(everything)
        orders.append(tuple(np.round(audio.reshape(6, -1).sum(axis=1), 3)))
    assert len(set(orders)) > 1, "the training split is not reshuffled between epochs"


def test_weak_training_set_includes_the_background_videos(builder):
    dataset = data.weakly_supervised_dataset(builder, "train", TRAIN + BACKGROUND, training=True)
    ((inputs, targets),) = list(tfds.as_numpy(dataset))
    assert targets["video_probabilities"].shape == (10, 29)
    assert targets["video_probabilities"].dtype == np.float32
    expected = [e["audio"] for e in _direct(builder, "train")]
    expected += [e["audio"] for e in _direct(builder, "train_background")]
    assert _fingerprints(inputs["audio"]) == _fingerprints(expected)
    background = targets["video_probabilities"][:, ave.BACKGROUND] == 1.0
    all_background = (targets["segment_logits"] == ave.BACKGROUND).all(axis=1)
    assert background.sum() >= BACKGROUND
    np.testing.assert_array_equal(background, all_background)
    np.testing.assert_allclose(targets["video_probabilities"].sum(axis=1), 1.0, rtol=1e-6)


def test_weak_eval_has_no_background_videos_and_matches_direct_reads(builder):
    direct = _direct(builder, "train[:5]")
    dataset = data.weakly_supervised_dataset(builder, "train[:5]", 4, training=False)
    batches = list(tfds.as_numpy(dataset))
    probs = np.concatenate([targets["video_probabilities"] for _, targets in batches])
    np.testing.assert_array_equal(probs, np.stack([e["prob_label"] for e in direct]))


def test_pipeline_runs_inside_a_tf_function(builder):
    dataset = data.fully_supervised_dataset(builder, "test", 2, training=False)

    @tf.function
    def count_segments(ds):
        return ds.reduce(tf.constant(0), lambda n, pair: n + tf.size(pair[1]["segment_logits"]))

    assert int(count_segments(dataset)) == 10
