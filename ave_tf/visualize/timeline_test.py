"""Timeline: prepared arrays and the figure from a .keras model and from a SavedModel."""

import numpy as np
import pytest

from ave_tf import ave
from ave_tf.events import segment_events
from ave_tf.videos_test import build_dummy_split
from ave_tf.visualize import commands, timeline
from ave_tf.visualize.conftest import expected_pixels, make_options, png_size


def test_prepare_takes_the_argmax_and_the_probabilities_of_the_drawn_classes():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(ave.NUM_CLASSES), size=ave.NUM_SEGMENTS)
    labels = np.array([28, 28, 3, 3, 3, 3, 3, 28, 28, 28])
    prepared = timeline.prepare_timeline("v", probabilities, segment_labels=labels)
    np.testing.assert_array_equal(prepared.predicted, probabilities.argmax(-1))
    np.testing.assert_allclose(prepared.confidence, probabilities.max(-1))
    np.testing.assert_allclose(prepared.truth_probability, probabilities[np.arange(10), labels])
    assert prepared.correct == int((probabilities.argmax(-1) == labels).sum())
    (event,) = prepared.true_events
    assert (event.category, event.start, event.end) == (3, 2.0, 7.0)
    assert event.confidence == pytest.approx(probabilities[2:7, 3].mean())


def test_predicted_events_come_from_ave_tf_events():
    classes = np.array([28, 5, 5, 5, 28, 28, 7, 7, 28, 28])
    probabilities = np.full((10, 29), 0.01)
    probabilities[np.arange(10), classes] = np.linspace(0.5, 0.9, 10)
    prepared = timeline.prepare_timeline("v", probabilities)
    assert prepared.predicted_events == tuple(segment_events(classes, probabilities))
    assert [e.describe().split(" (")[0] for e in prepared.predicted_events] == [
        "Female speech, woman speaking from 1 s to 4 s",
        "Violin, fiddle from 6 s to 8 s",
    ]


def test_prepare_without_labels_and_with_given_classes():
    probabilities = np.full((10, 29), 1 / 29)
    prepared = timeline.prepare_timeline("v", probabilities, segment_classes=np.arange(10))
    np.testing.assert_array_equal(prepared.predicted, np.arange(10))
    assert prepared.truth is None and prepared.correct is None


def test_prepare_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"segment_probabilities must be \(10, 29\)"):
        timeline.prepare_timeline("v", np.zeros((10, 28)))


def test_command_from_keras_model(tmp_path, model_file, features_file):
    options = make_options(
        "timeline", tmp_path, model=str(model_file), features=str(features_file), videos=(0, 2)
    )
    written = commands.run(options)
    assert [p.name for p in written] == ["timeline_clip_0.png", "timeline_clip_2.png"]
    for path in written:
        assert png_size(path) == expected_pixels(timeline.SIZE_INCHES)


@pytest.mark.slow
def test_command_from_an_export_root(tmp_path, model_file, features_file):
    """A versioned export root (its newest SavedModel, via ave_tf.predictors) draws too."""
    from ave_tf.export import export_saved_model
    from ave_tf.predictors import load_keras_model

    export_saved_model(load_keras_model(model_file), tmp_path, "psp")
    options = make_options(
        "timeline", tmp_path / "out", model=str(tmp_path / "psp"), features=str(features_file)
    )
    (path,) = commands.run(options)
    assert png_size(path) == expected_pixels(timeline.SIZE_INCHES)


def test_timeline_from_a_tfds_split(tmp_path, tmp_path_factory, model_file):
    data_dir, _ = build_dummy_split(tmp_path_factory)
    options = make_options(
        "timeline",
        tmp_path,
        model=str(model_file),
        dataset="features",
        split="test[:1]",
        data_dir=data_dir,
    )
    (path,) = commands.run(options)
    assert path.name.startswith("timeline_") and png_size(path) == expected_pixels(
        timeline.SIZE_INCHES
    )
