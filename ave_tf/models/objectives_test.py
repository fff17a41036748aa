"""The compiled training objective equals the paper's loss computed by hand from the outputs.

``training_view(model, config)`` compiled with ``training_objectives(config)`` must report, on a
fixed batch, for ``evaluate``, ``compute_loss`` and ``train_on_batch`` (before its update):
fully supervised ``CE(segment_logits, labels) + lambda * AVPS(av_similarity, labels)``
(reference.md §2: CE averaged over batch * 10 segments; AVPS the MSE between the normalised
``relu(cos)`` and the 1/n target over the video's event segments); weakly supervised the
binary cross-entropy between ``video_probabilities`` and ``prob_label`` (§3). The hand
computation below is NumPy in float64 from the model's own (eval-mode) outputs.
"""

import dataclasses

import keras
import numpy as np
import pytest

from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig
from ave_tf.models import model_for_config, training_objectives, training_view

BACKGROUND = 28
NUM_CLASSES = 29
# Four videos: an event for 4 s, an event for all 10 s, background only (the AVPS target then
# spreads over the background segments), and two short events of one category.
LABELS = np.array(
    [
        [28, 28, 3, 3, 3, 3, 28, 28, 28, 28],
        [17] * 10,
        [28] * 10,
        [5, 5, 28, 28, 28, 28, 28, 5, 28, 28],
    ],
    dtype=np.int32,
)
RTOL = 1e-5


def features(seed=0):
    rng = np.random.default_rng(seed)
    batch = len(LABELS)
    return {
        "audio": rng.uniform(0, 2, (batch, 10, 128)).astype("float32"),
        "visual": rng.uniform(0, 1, (batch, 10, 7, 7, 512)).astype("float32"),
    }


def prob_label(labels):
    """Y_weak: the mean over the 10 segments of the one-hot labels (background included)."""
    return np.eye(NUM_CLASSES)[labels].mean(axis=1)


def targets(view, config):
    """Targets for the outputs the training view has (no AVPS output when lambda is 0)."""
    if isinstance(config, FullySupervisedConfig):
        every = {"segment_logits": LABELS, "av_similarity": LABELS}
    else:
        every = {"video_probabilities": prob_label(LABELS), "segment_logits": LABELS}
    return {name: every[name] for name in view.output}


def cross_entropy(logits, labels):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], axis=-1).mean()


def avps(cosine, labels, epsilon):
    losses = []
    for cos, row in zip(cosine.astype(np.float64), labels, strict=True):
        events = row[row != BACKGROUND]
        target_class = events[0] if len(events) else BACKGROUND
        target = (row == target_class) / np.sum(row == target_class)
        similarity = np.maximum(cos, 0)
        similarity = similarity / (similarity.sum() + epsilon)
        losses.append(np.mean((similarity - target) ** 2))
    return np.mean(losses)


def binary_cross_entropy(probabilities, target):
    p = probabilities.astype(np.float64)
    return -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))


def hand_loss(config, outputs):
    if isinstance(config, FullySupervisedConfig):
        loss = cross_entropy(outputs["segment_logits"], LABELS)
        return loss + config.avps_weight * avps(outputs["av_similarity"], LABELS, config.epsilon)
    return binary_cross_entropy(outputs["video_probabilities"], prob_label(LABELS))


def compiled_view(config):
    keras.utils.set_random_seed(7)
    model = model_for_config(config)
    losses, loss_weights, metrics = training_objectives(config)
    view = training_view(model, config)
    view.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=losses,
        loss_weights=loss_weights,
        metrics=metrics,
    )
    return model, view


def eval_outputs(model, inputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(inputs, training=False).items()}


CONFIGS = {
    "fully": FullySupervisedConfig(),
    "fully_lambda_3": FullySupervisedConfig(avps_weight=3.0),
    "fully_no_avps": FullySupervisedConfig(avps_weight=0.0),
    "weakly": WeaklySupervisedConfig(),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_evaluate_and_compute_loss_equal_the_hand_computed_objective(name):
    config = CONFIGS[name]
    model, view = compiled_view(config)
    inputs, y = features(), targets(view, config)
    outputs = eval_outputs(model, inputs)
    expected = hand_loss(config, outputs)
    if isinstance(config, FullySupervisedConfig) and config.avps_weight:
        # The AVPS term weighs in: a wrong lambda or a dropped term cannot pass.
        term = config.avps_weight * avps(outputs["av_similarity"], LABELS, config.epsilon)
        assert term > 100 * RTOL * expected

    evaluated = view.evaluate(inputs, y, batch_size=len(LABELS), verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["loss"], expected, rtol=RTOL)
    computed = view.compute_loss(x=inputs, y=y, y_pred=view(inputs, training=False), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(computed), expected, rtol=RTOL)


@pytest.mark.parametrize("name", ["fully", "weakly"])
def test_train_on_batch_reports_the_objective_before_its_update(name):
    # Without dropout the training-mode forward equals the eval-mode one.
    config = dataclasses.replace(CONFIGS[name], dropout=0.0)
    model, view = compiled_view(config)
    inputs, y = features(), targets(view, config)
    expected = hand_loss(config, eval_outputs(model, inputs))

    logs = view.train_on_batch(inputs, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=RTOL)
    # The step did update the weights the loss was computed with.
    assert hand_loss(config, eval_outputs(model, inputs)) != pytest.approx(expected, rel=RTOL)
