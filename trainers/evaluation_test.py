"""Segment report against scikit-learn; selection epochs against the official rule."""

import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion

from trainers.callbacks import should_validate
from trainers.evaluation import format_report, segment_report


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
