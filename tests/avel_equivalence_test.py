"""ave-tf's AVEL computes what AVE-ECCV18's ``att_Net`` computes.

Random ``att_Net`` ``state_dict``s (``tests/avel_official_weights.py``) go through
``ave_tf.avel_weights`` into the Keras AVEL models; their outputs must match
``tests/avel_numpy_reference.py`` (written from ``att_Net``'s forward pass, independently of
``ave_tf``) to ``TOLERANCE`` (absolute, float32 model vs float64 reference), for both settings,
batch sizes 1 / 3 / 8, and the weakly switches (weighting branch, its ReLU, max / mean pooling).
"""

import functools

import keras
import numpy as np
import pytest

from ave_tf import avel_weights
from ave_tf.config import AVELFullySupervisedConfig, AVELWeaklySupervisedConfig
from ave_tf.state_dicts import StateDictError
from tests import avel_numpy_reference as ref
from tests import official_weights
from tests.avel_official_weights import att_net_shapes, random_att_net_state

TOLERANCE = 1e-5
SEED = 3
FEATURE_SEED = 4
OUTPUTS = {
    "fully": ("segment_logits", "segment_probabilities", "av_similarity"),
    "weakly": ("segment_logits", "segment_probabilities", "video_probabilities"),
}
INTERNALS = ("visual_attention", "visual_attended", "audio_lstm", "visual_lstm")
CONFIGS = {
    "fully": AVELFullySupervisedConfig(),
    "fully_avps": AVELFullySupervisedConfig(avps_weight=100.0),
    "weakly": AVELWeaklySupervisedConfig(),
    "weakly_weighting": AVELWeaklySupervisedConfig(weighting_branch=True),
    "weakly_weighting_paper_mean": AVELWeaklySupervisedConfig(
        weighting_branch=True, weighting_relu=False, video_pooling="mean"
    ),
    "weakly_mean": AVELWeaklySupervisedConfig(video_pooling="mean"),
}


def state_for(config):
    return random_att_net_state(SEED, getattr(config, "weighting_branch", False))


@functools.cache
def keras_model(name):
    config = CONFIGS[name]
    return avel_weights.att_net_model(state_for(config), config, with_internals=True)


def reference_outputs(config, features):
    options = {}
    if config.SETTING == "weakly":
        options = {
            "weighting_branch": config.weighting_branch,
            "weighting_relu": config.weighting_relu,
            "pooling": config.video_pooling,
        }
    return ref.avel_forward(
        state_for(config), features["audio"], features["visual"], config.SETTING, **options
    )


def assert_matches_reference(name, batch):
    config = CONFIGS[name]
    features = official_weights.random_features(batch, seed=FEATURE_SEED + batch)
    expected = reference_outputs(config, features)
    outputs = keras_model(name)(features, training=False)
    got = {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}
    assert set(OUTPUTS[config.SETTING] + INTERNALS) <= set(got)
    for key in OUTPUTS[config.SETTING] + INTERNALS:
        assert got[key].shape == expected[key].shape, key
        error = np.abs(got[key] - expected[key]).max()
        assert error <= TOLERANCE, f"{name} {key}: max |keras - reference| = {error:.3g}"
    return expected


# The reference and the weights on their own.


def test_state_dict_has_att_nets_keys_in_pytorch_layout():
    state = random_att_net_state(SEED)
    assert len(state) == 27  # 7 AVGA + 2 x 8 LSTM + 4 classifier
    assert {key: value.shape for key, value in state.items()} == att_net_shapes()
    assert state["lstm_video.weight_ih_l0_reverse"].shape == (512, 512)
    assert state["L1.weight"].shape == (64, 512)  # (out, in): the 512-wide concatenation


@pytest.mark.parametrize("weighting_branch", [False, True])
def test_reference_and_converter_read_every_key(weighting_branch):
    features = official_weights.random_features(1, seed=FEATURE_SEED)
    state = official_weights.KeyRecorder(random_att_net_state(SEED, weighting_branch))
    setting = "weakly" if weighting_branch else "fully"
    ref.avel_forward(state, features["audio"], features["visual"], setting, weighting_branch)
    assert state.read == set(state)
    name = "weakly_weighting" if weighting_branch else "fully"
    state = official_weights.KeyRecorder(random_att_net_state(SEED, weighting_branch))
    avel_weights.att_net_model(state, CONFIGS[name])
    assert state.read == set(state)


def test_reference_is_not_vacuous():
    """Outputs spread enough that a wrong layout or order could not pass by accident."""
    features = official_weights.random_features(3, seed=FEATURE_SEED)
    out = reference_outputs(CONFIGS["weakly"], features)
    assert np.abs(out["audio_lstm"]).max() > 0.5 and np.abs(out["visual_lstm"]).max() > 0.5
    assert out["visual_attention"].max() > 2 / 49
    assert out["segment_logits"].std() > 0.1
    # max pooling is not mean pooling on these scores
    mean = reference_outputs(CONFIGS["weakly_mean"], features)["video_probabilities"]
    assert np.abs(mean - out["video_probabilities"]).max() > 100 * TOLERANCE


# The Keras models, through the converter, against the reference.


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("name", ["fully", "weakly"])
def test_keras_matches_reference(name, batch):
    assert_matches_reference(name, batch)


@pytest.mark.parametrize(
    "name", ["fully_avps", "weakly_weighting", "weakly_weighting_paper_mean", "weakly_mean"]
)
def test_keras_matches_reference_with_the_psp_switches(name):
    expected = assert_matches_reference(name, 3)
    if name.startswith("weakly_weighting"):  # the branch really scales the scores
        plain = reference_outputs(
            CONFIGS[name].replace(weighting_branch=False),
            official_weights.random_features(3, seed=FEATURE_SEED + 3),
        )
        assert np.abs(plain["segment_logits"] - expected["segment_logits"]).max() > 0.01


# Converter errors.


def test_missing_key_is_an_error_naming_it():
    state = random_att_net_state(SEED)
    del state["lstm_video.bias_hh_l0_reverse"]
    with pytest.raises(StateDictError, match="lstm_video.bias_hh_l0_reverse"):
        avel_weights.att_net_model(state, AVELFullySupervisedConfig())


def test_weighting_branch_needs_w3():
    with pytest.raises(StateDictError, match="W3.weight"):
        avel_weights.att_net_model(random_att_net_state(SEED), CONFIGS["weakly_weighting"])


def test_unknown_key_is_an_error_naming_it():
    state = random_att_net_state(SEED, weighting_branch=True)  # W3 without the branch
    with pytest.raises(StateDictError, match="W3.weight"):
        avel_weights.att_net_model(state, AVELWeaklySupervisedConfig())


def test_misshaped_key_is_an_error_naming_it_and_both_shapes():
    state = random_att_net_state(SEED)
    state["L1.weight"] = state["L1.weight"].T
    with pytest.raises(StateDictError) as error:
        avel_weights.att_net_model(state, AVELFullySupervisedConfig())
    message = str(error.value)
    assert "L1.weight" in message and "(512, 64)" in message and "(64, 512)" in message


def test_psp_configs_are_refused():
    from ave_tf.config import FullySupervisedConfig

    with pytest.raises(TypeError, match="AVEL"):
        avel_weights.att_net_model(random_att_net_state(SEED), FullySupervisedConfig())


# The converter's command line: --model avel.


@pytest.mark.slow  # fresh Python processes importing TensorFlow: ~15-25 s each on 2 cores
def test_command_line_converts_an_att_net_npz(tmp_path):
    from tests.official_equivalence_test import assert_usage_error, run_converter

    state = random_att_net_state(SEED, weighting_branch=True)
    state_path = tmp_path / "att_Net_weak.npz"
    official_weights.save_state_dict(state, state_path)
    model_path = tmp_path / "avel_weakly.keras"
    result = run_converter("--model", "avel", "--setting", "weakly", state_path, model_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"read 28 tensors from {state_path}" in result.stdout
    assert "with the weighting branch" in result.stdout
    model = keras.models.load_model(model_path)
    features = official_weights.random_features(2, seed=FEATURE_SEED)
    expected = reference_outputs(CONFIGS["weakly_weighting"], features)
    got = model(features, training=False)
    for key in OUTPUTS["weakly"]:
        error = np.abs(keras.ops.convert_to_numpy(got[key]) - expected[key]).max()
        assert error <= TOLERANCE, f"reloaded {key}: max |keras - reference| = {error:.3g}"
    # AVEL has no tau; a PSP checkpoint is not an att_Net (the error says so, nothing written).
    other = tmp_path / "other.keras"
    result = run_converter(
        "--model", "avel", "--setting", "fully", "--tau", "0.1", state_path, other
    )
    assert_usage_error(result, "--tau")
    psp_path = tmp_path / "PSP_fully.npz"
    official_weights.save_state_dict(official_weights.random_state_dict("fully", 0), psp_path)
    result = run_converter("--model", "avel", "--setting", "fully", psp_path, other)
    assert_usage_error(result, psp_path, "drop --model avel")
    assert not other.exists()
