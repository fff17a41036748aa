"""Segment report against scikit-learn; evaluate on a split; its command line's bad input;
selection epochs against the official rule."""

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from trainers.callbacks import should_validate
from trainers.evaluate import evaluate, format_report, segment_report


def test_segment_report_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 29, size=(20, 10))
    probabilities = rng.random((20, 10, 29))
    report = segment_report(labels, probabilities)
    predictions = probabilities.argmax(-1)
    expected = sk_confusion(labels.ravel(), predictions.ravel(), labels=range(29))
    np.testing.assert_array_equal(report["confusion_matrix"], expected)
    assert report["accuracy"] == np.mean(labels == predictions)
    for i, row in enumerate(report["per_class"].values()):
        mask = labels == i
        assert row["support"] == mask.sum()
        if mask.any():
            assert row["accuracy"] == np.mean(predictions[mask] == i)
    assert "segment accuracy" in format_report(report)


def test_validation_epochs_follow_the_official_rule():
    official = [e for e in range(300) if e % 5 == 0 and e != 0]
    ours = [e for e in range(300) if should_validate(e, 300, 5)]
    assert ours == official + [299]


def test_evaluate_streams_the_split_through_the_model(tmp_path, tmp_path_factory):
    import keras

    from ave_tf.models import fully_supervised_model
    from ave_tf.videos import read_split
    from ave_tf.videos_test import build_dummy_split

    data_dir, _ = build_dummy_split(tmp_path_factory)
    keras.utils.set_random_seed(5)
    model = fully_supervised_model()
    model.save(tmp_path / "m.keras")
    report = evaluate(tmp_path / "m.keras", "features", "test", 2, data_dir=data_dir)
    videos = read_split("features", "test", data_dir=data_dir)
    predicted = model.predict(videos.inputs, verbose=0)["segment_probabilities"].argmax(-1)
    assert report["segments"] == videos.segment_labels.size
    assert report["accuracy"] == pytest.approx(np.mean(predicted == videos.segment_labels))


def test_command_line_bad_model_is_one_error_line_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "trainers.evaluate", f"--model={tmp_path / 'absent.keras'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'absent.keras'} is neither a .keras file, a SavedModel folder "
        "nor a folder of SavedModel versions"
    ]
