"""Segment accuracy by hand, across batches and across two replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ave_tf.metrics import SegmentAccuracy


def _one_hot_logits(classes):
    return np.eye(29, dtype="float32")[np.asarray(classes)]


def test_counts_every_segment_of_every_video():
    metric = SegmentAccuracy()
    labels = np.array([[1] * 10, [28] * 10])
    predicted = np.array([[1] * 7 + [2] * 3, [28] * 10])
    metric.update_state(labels, _one_hot_logits(predicted))
    assert float(metric.result()) == pytest.approx(17 / 20)
    metric.update_state(labels[:1], _one_hot_logits(np.full((1, 10), 5)))
    assert float(metric.result()) == pytest.approx(17 / 30)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_same_on_two_replicas_with_uneven_batches():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 29, (13, 10))
    logits = rng.normal(size=(13, 10, 29)).astype("float32")
    expected = float((logits.argmax(-1) == labels).mean())
    for strategy in (
        tf.distribute.OneDeviceStrategy("CPU:0"),
        tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]),
    ):
        with strategy.scope():
            inputs = keras.Input((10, 29))
            model = keras.Model(inputs, keras.layers.Identity()(inputs))
            model.compile(
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[SegmentAccuracy()],
            )
        result = model.evaluate(logits, labels, batch_size=4, return_dict=True, verbose=0)
        assert result["segment_accuracy"] == pytest.approx(expected)
