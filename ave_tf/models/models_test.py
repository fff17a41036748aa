"""Both PSP networks: outputs, config round trip, .keras save/load, one fit step, switches."""

import json
import math

import keras
import numpy as np
import pytest

import ave_tf.models  # noqa: F401  (registers the custom objects for load_model)
from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig
from ave_tf.models import INTERNALS, model_for_config
from ave_tf.testing.random_batches import compiled_model, random_batch

CONFIGS = {"fully": FullySupervisedConfig(), "weakly": WeaklySupervisedConfig()}
OUTPUTS = {
    "fully": {
        "segment_logits": (10, 29),
        "segment_probabilities": (10, 29),
        "av_similarity": (10,),
    },
    "weakly": {
        "segment_logits": (10, 29),
        "segment_probabilities": (10, 29),
        "video_probabilities": (29,),
    },
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def setting(request):
    return request.param


@pytest.fixture(scope="module")
def model(setting):
    return model_for_config(CONFIGS[setting])


def test_outputs_have_the_documented_shapes(setting, model):
    inputs, _ = random_batch(4)
    outputs = model.predict(inputs, verbose=0)
    assert {name: value.shape[1:] for name, value in outputs.items()} == OUTPUTS[setting]
    np.testing.assert_allclose(outputs["segment_probabilities"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        outputs["segment_probabilities"], keras.ops.softmax(outputs["segment_logits"]), atol=1e-6
    )


def test_internals_come_from_the_same_network(setting, model):
    inputs, _ = random_batch(4)
    inspected = ave_tf.models.expose_internals(model)
    outputs = inspected.predict(inputs, verbose=0)
    assert set(INTERNALS) <= set(outputs)
    np.testing.assert_allclose(
        outputs["segment_logits"], model.predict(inputs, verbose=0)["segment_logits"], atol=1e-6
    )
    np.testing.assert_allclose(outputs["visual_attention"].sum(-1), 1.0, atol=1e-5)
    assert outputs["gamma_va"].shape == (4, 10, 10)


def test_config_json_round_trip(model):
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = keras.Model.from_config(config)
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]


def test_keras_file_round_trip(model, tmp_path):
    inputs, _ = random_batch(4)
    path = tmp_path / "psp.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = model.predict(inputs, verbose=0)
    actual = reloaded.predict(inputs, verbose=0)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_one_fit_step(setting, jit_compile):
    model = compiled_model(CONFIGS[setting], jit_compile)
    inputs, targets = random_batch(4)
    targets = {name: targets[name] for name in model.output}
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(inputs, targets, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert 0.0 <= history.history["segment_logits_segment_accuracy"][0] <= 1.0
    after = [np.array(w) for w in model.trainable_weights]
    unmoved = {
        w.path
        for w, old, new in zip(model.trainable_weights, before, after, strict=True)
        if np.array_equal(old, new)
    }
    # The official ReLU before the weighting sigmoid can zero W_6's gradient for a whole batch.
    allowed = {"weighting_branch/w6/kernel"} if setting == "weakly" else set()
    assert unmoved <= allowed, f"weights without a gradient: {sorted(unmoved)}"


@pytest.mark.parametrize(
    "config",
    [
        FullySupervisedConfig(tau="off"),
        FullySupervisedConfig(tau=-math.inf, self_attention="transformer", self_attention_heads=2),
        WeaklySupervisedConfig(self_attention="official"),
        FullySupervisedConfig(avps_weight=0.0, avga_broadcast="channel", inclusive_threshold=True),
        WeaklySupervisedConfig(weighting_branch=False, renormalize=True),
        WeaklySupervisedConfig(weighting_relu=False, tau=0.0),
    ],
    ids=[
        "wo_psp",
        "asp_sapsp",
        "official_sapsp",
        "no_avps_paper",
        "no_weighting",
        "paper_weighting",
    ],
)
def test_variants_build_and_run(config):
    model = model_for_config(config, with_internals=True)
    outputs = model.predict(random_batch(2)[0], verbose=0)
    if math.isinf(config.tau) and config.tau > 0:
        assert not outputs["gamma_va"].any()
    if config.self_attention != "off":
        block = model.get_layer("audio_self_attention").__class__.__name__
        assert (
            block
            == {"official": "SymmetricSelfAttention", "transformer": "SegmentSelfAttention"}[
                config.self_attention
            ]
        )
    assert all(np.isfinite(value).all() for value in outputs.values())


def test_wrong_config_type_is_refused():
    with pytest.raises(TypeError, match="FullySupervisedConfig"):
        ave_tf.models.fully_supervised_model(WeaklySupervisedConfig())


def test_training_view_fits_on_the_pipeline_targets_and_trains_the_full_model(setting):
    config = CONFIGS[setting]
    full = model_for_config(config)
    view = ave_tf.models.training_view(full, config)
    losses, loss_weights, metrics = ave_tf.models.training_objectives(config)
    view.compile(optimizer="adam", loss=losses, loss_weights=loss_weights, metrics=metrics)
    inputs, targets = random_batch(4)
    # Exactly what ave_tf.data delivers: no target for segment_probabilities.
    pipeline_targets = {name: targets[name] for name in view.output}
    assert "segment_probabilities" not in pipeline_targets
    before = np.array(full.get_layer("classifier_output").kernel)
    view.fit(inputs, pipeline_targets, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(before, np.array(full.get_layer("classifier_output").kernel))
