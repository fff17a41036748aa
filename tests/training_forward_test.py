"""A training-mode forward pass (dropout on) computes the official network with the same masks.

The Keras model (random official weights through the converter) runs once with
``training=True``; every call of PSP's dropout layer is recorded (its input and output). Each
call's mask is read from those arrays, and ``tests/numpy_reference.py`` — fed the recorded masks
at the official dropout positions (after the ReLU of ``psp.v_L1``, ``v_L2``, ``a_L1``, ``a_L2``
and, fully supervised, ``psp.v_fc``, ``a_fc``) — must give the model's outputs within 1e-5.

A mask is assigned to an official position by value: the reference's pre-dropout tensor there
must equal the input of exactly one recorded call. Dropout applied anywhere else (or scaled
otherwise than inverted dropout, ``x * mask / (1 - rate)``) cannot pass.
"""

import keras
import numpy as np
import pytest

from ave_tf import convert
from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig
from tests import numpy_reference as ref
from tests import official_weights as weights
from tests.official_equivalence_test import REQUIRED

TOLERANCE = 1e-5
THRESHOLD_MARGIN = 1e-6
# A recorded dropout input and the reference's tensor at the same position differ by float32
# rounding only (~1e-6); different positions differ by O(1).
SAME_TENSOR = 1e-4
BATCH = 3
RATE = 0.1
SETTINGS = {
    "fully": (FullySupervisedConfig, ref.fully_forward, 0.099),
    "weakly": (WeaklySupervisedConfig, ref.weakly_forward, 0.095),
}
POSITIONS = {
    "fully": ("psp.v_L1", "psp.v_L2", "psp.a_L1", "psp.a_L2", "psp.v_fc", "psp.a_fc"),
    "weakly": ("psp.v_L1", "psp.v_L2", "psp.a_L1", "psp.a_L2"),
}


def training_forward(model, features, monkeypatch):
    """Runs ``model`` with ``training=True``.

    Returns:
        (outputs as NumPy arrays, [(input, output) of each call of PSP's dropout layer]).
    """
    dropout = model.get_layer("psp").dropout_layer
    original = dropout.call
    calls = []

    def recording_call(inputs, training=None):
        outputs = original(inputs, training=training)
        calls.append((keras.ops.convert_to_numpy(inputs), keras.ops.convert_to_numpy(outputs)))
        return outputs

    monkeypatch.setattr(dropout, "call", recording_call)
    outputs = model(features, training=True)
    return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}, calls


def masks_of(calls):
    """The keep-mask of each recorded call, after checking it is inverted dropout at RATE."""
    masks = []
    for inputs, outputs in calls:
        kept = outputs != 0
        nonzero = inputs != 0
        # Kept entries are scaled by 1 / (1 - rate); dropped ones are exactly 0.
        np.testing.assert_allclose(outputs[kept], inputs[kept] / (1 - RATE), rtol=1e-6)
        dropped = nonzero & ~kept
        assert 0.05 < dropped.sum() / nonzero.sum() < 0.15, "dropout did not drop ~10 %"
        masks.append(kept)
    return masks


class MaskReplay:
    """``ref.Dropout`` that applies, at each official position, the recorded mask whose input
    equals the reference's tensor there; remembers which recorded call served which position."""

    def __init__(self, calls):
        self.inputs = [inputs for inputs, _ in calls]
        self.masks = masks_of(calls)
        self.used = {}

    def __call__(self, name, x):
        distances = [np.abs(x - recorded).max() for recorded in self.inputs]
        index = int(np.argmin(distances))
        assert distances[index] < SAME_TENSOR, (
            f"no dropout call of the Keras model has the input the official network drops out "
            f"at {name} (closest differs by {distances[index]:.3g})"
        )
        assert index not in self.used.values(), f"{name} matched a call already used"
        self.used[name] = index
        return x * self.masks[index] / (1 - RATE)


@pytest.mark.parametrize("setting", ["fully", "weakly"])
def test_training_forward_matches_reference_with_the_same_masks(setting, monkeypatch):
    config_class, forward, tau = SETTINGS[setting]
    # Fixed dropout masks: unseeded ones occasionally put a masked beta within rounding of tau.
    keras.utils.set_random_seed(2)
    state = weights.random_state_dict(setting, seed=1)
    features = weights.random_features(BATCH, seed=4)
    model = convert.official_model(state, config_class(tau=tau, dropout=RATE), with_internals=True)

    got, calls = training_forward(model, features, monkeypatch)
    replay = MaskReplay(calls)
    expected = forward(state, features["audio"], features["visual"], tau, dropout=replay)

    assert sorted(replay.used) == sorted(POSITIONS[setting])
    assert len(calls) == len(POSITIONS[setting]), "dropout applied at non-official positions"
    for direction in ("va", "av"):
        assert np.abs(expected[f"beta_{direction}"] - tau).min() > THRESHOLD_MARGIN, (
            "a beta lies within rounding of tau: pick another feature seed"
        )
    for name in REQUIRED[setting]:
        error = np.abs(got[name] - expected[name]).max()
        assert error <= TOLERANCE, f"{setting} {name}: max |keras - reference| = {error:.3g}"
    # The masks matter: eval mode (no dropout) is far from the training-mode outputs.
    evaluated = model(features, training=False)["segment_logits"]
    assert np.abs(keras.ops.convert_to_numpy(evaluated) - got["segment_logits"]).max() > 1e-2
