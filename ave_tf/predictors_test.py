"""The one model loader: a .keras file, a SavedModel folder and an export root predict alike."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ave_tf import ave, predictors
from ave_tf.errors import UsageError
from ave_tf.visualize.conftest import random_videos


@pytest.fixture(scope="module")
def keras_path(tmp_path_factory):
    """A randomly initialised fully supervised PSP model saved as .keras."""
    import keras

    from ave_tf.models import fully_supervised_model

    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("models") / "psp.keras"
    fully_supervised_model().save(path)
    return path


@pytest.fixture(scope="module")
def model_paths(keras_path):
    """{"keras": .keras file, "saved_model": version folder, "root": export root} of one model."""
    from ave_tf.export import export_saved_model

    version = export_saved_model(
        predictors.load_keras_model(keras_path), keras_path.parent / "exports", "psp"
    )
    return {"keras": keras_path, "saved_model": version, "root": version.parent}


def _numpy_decisions(probabilities):
    """The serving decisions from the probabilities, as the export docstring states them."""
    segment_classes = probabilities.argmax(-1)
    video_class = probabilities[..., : ave.BACKGROUND].mean(axis=1).argmax(-1)
    return segment_classes, segment_classes != ave.BACKGROUND, video_class


@pytest.mark.slow
def test_every_kind_of_model_path_predicts_the_same(model_paths):
    arrays = random_videos(5, seed=4)
    inputs = {"audio": arrays["audio"], "visual": arrays["visual"]}
    outputs = {
        kind: predictors.predict_in_batches(predictors.load_predictor(path), inputs, 2)
        for kind, path in model_paths.items()
    }
    reference = outputs["keras"]
    assert set(reference) == {
        "segment_probabilities",
        "segment_classes",
        "is_event",
        "video_class",
        "class_names",
    }
    assert reference["segment_probabilities"].shape == (5, ave.NUM_SEGMENTS, ave.NUM_CLASSES)
    classes, is_event, video_class = _numpy_decisions(reference["segment_probabilities"])
    np.testing.assert_array_equal(reference["segment_classes"], classes)
    np.testing.assert_array_equal(reference["is_event"], is_event)
    np.testing.assert_array_equal(reference["video_class"], video_class)
    assert [name.decode() for name in reference["class_names"][4]] == list(ave.CLASS_NAMES)
    for kind in ("saved_model", "root"):
        np.testing.assert_allclose(
            outputs[kind]["segment_probabilities"], reference["segment_probabilities"], atol=1e-5
        )
        for name in ("segment_classes", "is_event", "video_class", "class_names"):
            np.testing.assert_array_equal(outputs[kind][name], reference[name], err_msg=name)
    whole = predictors.load_predictor(model_paths["keras"])(inputs)
    np.testing.assert_allclose(
        whole["segment_probabilities"], reference["segment_probabilities"], atol=1e-6
    )


def test_inputs_are_checked_before_the_model_runs(keras_path):
    predict = predictors.load_predictor(keras_path)
    audio = np.zeros((1, 10, 128), np.float32)
    with pytest.raises(UsageError, match=r"visual must have shape \(batch, 10, 7, 7, 512\)"):
        predict({"audio": audio, "visual": np.zeros((1, 10, 128))})
    audio[0, 3, 5] = np.nan
    with pytest.raises(UsageError, match=r"audio has a non-finite value .* at \(0, 3, 5\)"):
        predict({"audio": audio, "visual": np.zeros((1, 10, 7, 7, 512))})
    empty = {"audio": np.zeros((0, 10, 128)), "visual": np.zeros((0, 10, 7, 7, 512))}
    with pytest.raises(UsageError, match="empty batch"):
        predictors.predict_in_batches(predict, empty, 4)


def test_paths_that_are_no_model_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for path in (tmp_path / "empty", tmp_path / "notes.txt", tmp_path / "absent.keras"):
        with pytest.raises(UsageError, match=f"{path} is neither a .keras file, a SavedModel"):
            predictors.load_predictor(path)
    with pytest.raises(UsageError, match="notes.txt is not a .keras file"):
        predictors.load_keras_model(tmp_path / "notes.txt")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="broken.keras: cannot load the .keras model"):
        predictors.load_predictor(tmp_path / "broken.keras")


def test_saved_model_without_the_psp_signature_is_refused(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, [tf.TensorSpec((None,), tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures=module.double)
    tf.saved_model.save(tf.Module(), str(tmp_path / "bare"))
    with pytest.raises(UsageError, match=r"other: serving_default takes \['x'\]"):
        predictors.load_predictor(tmp_path / "other")
    with pytest.raises(UsageError, match="bare has no 'serving_default' signature"):
        predictors.load_predictor(tmp_path / "bare")


def test_graph_errors_of_the_signature_checks_become_their_message():
    message = "Input 'visual_bytes' has a non-finite value (NaN or Infinity)"
    nan = tf.constant([1.0, float("nan")])

    @tf.function
    def assertion(values):  # as the signatures test finiteness
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(values)), [message])
        return values

    @tf.function
    def check_numerics(values):  # as versions exported before did
        return tf.debugging.assert_all_finite(values, message)

    for check in (assertion, check_numerics):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            check(nan)
        assert predictors.graph_error_message(raised.value) == message


FRESH_PROCESS = """
import sys
import ave_tf
heavy = [name for name in ("tensorflow", "keras") if name in sys.modules]
assert not heavy, f"import ave_tf imported {heavy}"
from ave_tf.predictors import load_keras_model, load_predictor
heavy = [name for name in ("tensorflow", "keras") if name in sys.modules]
assert not heavy, f"import ave_tf.predictors imported {heavy}"
model = load_keras_model(sys.argv[1])
print(model.get_layer("avga").__class__.__module__)
load_predictor(sys.argv[1])
serving = sorted(name for name in sys.modules if name.startswith("ave_tf.serving"))
assert not serving, f"the loader imported {serving}"
"""


def test_a_fresh_process_loads_a_keras_file_with_the_loader_alone(keras_path):
    """The documented way (``ave_tf.__init__``): ``import ave_tf`` loads no TensorFlow or Keras,
    ``load_keras_model`` reloads a PSP ``.keras`` file without ``import ave_tf.models``, and
    the loader needs nothing of the serving package (its input checks are ``ave_tf.inputs``)."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(keras_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ave_tf.layers.audio_guided_visual_attention"]
