"""AVEL in both settings: outputs, internals, Keras config and .keras round trips, one fit step
through ``training_view`` + ``training_objectives`` (numbers: ``tests/avel_equivalence_test.py``).
"""

import json
import math

import keras
import numpy as np
import pytest

import ave_tf.models
from ave_tf.config import (
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    FullySupervisedConfig,
)
from ave_tf.models import model_for_config, training_objectives, training_view
from ave_tf.models.models_test import OUTPUTS  # AVEL answers with PSP's output names
from ave_tf.testing.random_batches import random_batch

# The switches on, so that the AVPS loss and the weighting branch take part in the fit step.
CONFIGS = {
    "fully": AVELFullySupervisedConfig(avps_weight=100.0),
    "weakly": AVELWeaklySupervisedConfig(weighting_branch=True),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def setting(request):
    return request.param


@pytest.fixture(scope="module")
def model(setting):
    return model_for_config(CONFIGS[setting])


def test_outputs_and_names(setting, model):
    assert model.name == f"avel_{setting}"
    outputs = model.predict(random_batch(3)[0], verbose=0)
    assert {name: value.shape[1:] for name, value in outputs.items()} == OUTPUTS[setting]
    np.testing.assert_allclose(
        outputs["segment_probabilities"], keras.ops.softmax(outputs["segment_logits"]), atol=1e-6
    )
    assert not any(layer.name == "psp" for layer in model.layers)


def test_internals_of_a_reloaded_model(model, tmp_path):
    inputs, _ = random_batch(2)
    path = tmp_path / "avel.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = model.predict(inputs, verbose=0)
    actual = reloaded.predict(inputs, verbose=0)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])
    internals = ave_tf.models.expose_internals(reloaded).predict(inputs, verbose=0)
    assert internals["audio_lstm"].shape == internals["visual_lstm"].shape == (2, 10, 256)
    assert "gamma_va" not in internals  # AVEL has no PSP
    np.testing.assert_allclose(internals["visual_attention"].sum(-1), 1.0, atol=1e-5)


def test_keras_config_json_round_trip(model):
    rebuilt = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]


def test_fit_step_through_the_training_view_moves_every_weight(setting):
    config = CONFIGS[setting]
    full = model_for_config(config)
    view = training_view(full, config)
    losses, loss_weights, metrics = training_objectives(config)
    assert ("av_similarity" in losses) == (setting == "fully")
    view.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=losses,
        loss_weights=loss_weights,
        metrics=metrics,
    )
    inputs, targets = random_batch(4)
    pipeline_targets = {name: targets[name] for name in view.output}  # what ave_tf.data gives
    before = [np.array(w) for w in full.trainable_weights]
    history = view.fit(inputs, pipeline_targets, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    unmoved = {
        w.path
        for w, old in zip(full.trainable_weights, before, strict=True)
        if np.array_equal(old, np.array(w))
    }
    # The official ReLU before the weighting sigmoid can zero W_6's gradient for a whole batch.
    assert unmoved <= {"weighting_branch/w6/kernel"}, sorted(unmoved)


def test_avps_is_off_and_weighting_off_by_default():
    fully_losses, _, _ = training_objectives(AVELFullySupervisedConfig())
    assert set(fully_losses) == {"segment_logits"}
    weak = model_for_config(AVELWeaklySupervisedConfig())
    assert not any(layer.name == "weighting_branch" for layer in weak.layers)
    assert weak.get_layer("video_scores").__class__.__name__ == "GlobalMaxPooling1D"


def test_builders_refuse_other_configs():
    with pytest.raises(TypeError, match="AVELFullySupervisedConfig"):
        ave_tf.models.avel_fully_supervised_model(FullySupervisedConfig())
    with pytest.raises(TypeError, match="AVELWeaklySupervisedConfig"):
        ave_tf.models.avel_weakly_supervised_model(AVELFullySupervisedConfig())
    with pytest.raises(TypeError, match="config"):
        model_for_config({"model": "avel"})
