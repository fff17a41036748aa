"""AVPS and weak BCE against hand-computed values; AVPS on 1 and 2 replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ave_tf.ave import BACKGROUND
from ave_tf.losses import AVPSLoss, avps_loss, avps_targets, video_binary_crossentropy

B = BACKGROUND


def test_avps_targets_spread_over_the_event_segments():
    labels = np.array(
        [
            [B, 3, 3, 3, B, B, B, B, B, B],  # event 3 on segments 1-3
            [7] * 10,  # event all along
            [B] * 10,  # no event: background segments take the role
        ]
    )
    targets = np.asarray(avps_targets(labels))
    np.testing.assert_allclose(targets[0], [0, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(targets[1], np.full(10, 0.1), atol=1e-7)
    np.testing.assert_allclose(targets[2], np.full(10, 0.1), atol=1e-7)


def test_avps_targets_do_not_leak_between_videos():
    # The official loader never reset its target buffer; here each row depends on itself only.
    first = np.array([[2] * 10, [B, B, 5, 5, B, B, B, B, B, B]])
    second = np.array([[B, B, 5, 5, B, B, B, B, B, B]])
    np.testing.assert_array_equal(
        np.asarray(avps_targets(first))[1], np.asarray(avps_targets(second))[0]
    )


def test_avps_loss_by_hand():
    labels = np.array([[B, 3, 3, B, B, B, B, B, B, B]])
    cosine = np.array([[0.5, 0.5, -0.2, 0.0, 0, 0, 0, 0, 0, 0]], dtype="float32")
    # relu -> [.5, .5, 0, ...], normalised -> [.5, .5, 0, ...]; target [0, .5, .5, 0, ...]
    expected = ((0.5 - 0) ** 2 + (0.5 - 0.5) ** 2 + (0 - 0.5) ** 2) / 10
    np.testing.assert_allclose(np.asarray(avps_loss(labels, cosine)), [expected], rtol=1e-6)


def test_video_bce_by_hand_and_clamped_like_torch():
    target = np.array([[0.7, 0.3, 0.0]], dtype="float32")
    prob = np.array([[0.6, 0.4, 0.0]], dtype="float32")
    by_hand = -(0.7 * np.log(0.6) + 0.3 * np.log(0.4) + 0.3 * np.log(0.4) + 0.7 * np.log(0.6))
    by_hand = (by_hand + 0.0) / 3  # the third class: 0 * log(0) -> 0 * -100, (1-0) * log(1) = 0
    np.testing.assert_allclose(
        np.asarray(video_binary_crossentropy(target, prob)), [by_hand], rtol=1e-6
    )
    certain_and_wrong = np.asarray(video_binary_crossentropy(np.ones((1, 1)), np.zeros((1, 1))))
    np.testing.assert_allclose(certain_and_wrong, [100.0])


def _evaluate_avps(strategy, labels, cosine):
    with strategy.scope():
        inputs = keras.Input((10,))
        model = keras.Model(inputs, keras.layers.Identity()(inputs))
        model.compile(loss=AVPSLoss())
    return model.evaluate(cosine, labels, batch_size=8, verbose=0)


def test_avps_loss_is_the_same_on_one_and_two_replicas():
    rng = np.random.default_rng(0)
    labels = np.where(rng.uniform(size=(16, 10)) < 0.3, B, rng.integers(0, 28, (16, 1)))
    cosine = rng.uniform(-1, 1, (16, 10)).astype("float32")
    one = _evaluate_avps(tf.distribute.OneDeviceStrategy("CPU:0"), labels, cosine)
    two = _evaluate_avps(tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]), labels, cosine)
    direct = float(np.mean(np.asarray(avps_loss(labels, cosine))))
    assert one == pytest.approx(direct, rel=1e-5)
    assert two == pytest.approx(direct, rel=1e-5)
