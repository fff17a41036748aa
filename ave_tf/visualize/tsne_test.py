"""t-SNE: stages, the perplexity guard, the figure."""

import numpy as np
import pytest

from ave_tf.visualize import commands, tsne
from ave_tf.visualize.conftest import expected_pixels, make_options, png_size


def assert_draws_figure(tmp_path, model_file, features_file):
    """The command on two videos (perplexity 5) writes one PNG of the figure's size."""
    options = make_options(
        "tsne",
        tmp_path,
        model=str(model_file),
        features=str(features_file),
        videos=(0, 1),
        perplexity=5.0,
    )
    (path,) = commands.run(options)
    assert png_size(path) == expected_pixels(tsne.SIZE_INCHES)


def test_check_perplexity_refuses_too_few_points():
    tsne.check_perplexity(31, 30)
    with pytest.raises(tsne.TooFewSamplesError, match="perplexity 30 needs more than 30 points"):
        tsne.check_perplexity(30, 30)
    with pytest.raises(ValueError, match="perplexity must be > 0"):
        tsne.check_perplexity(100, 0)


def test_command_refuses_before_loading_the_model(tmp_path, features_file):
    options = make_options(
        "tsne",
        tmp_path,
        model=str(tmp_path / "absent.keras"),
        features=str(features_file),
        perplexity=60.0,
    )
    with pytest.raises(tsne.TooFewSamplesError, match=r"got 60 segments \(6 videos x 10\)"):
        commands.run(options)
    assert not tmp_path.joinpath("tsne.png").exists()


def test_prepare_stages_flattens_segments():
    rng = np.random.default_rng(0)
    internals = {name: rng.normal(size=(2, 10, 256)) for name in tsne.OUTPUT_NAMES.values()}
    visual = rng.normal(size=(2, 10, 7, 7, 512))
    labels = rng.integers(0, 29, (2, 10))
    stages = tsne.prepare_stages(rng.normal(size=(2, 10, 128)), visual, internals, labels)
    assert set(stages.features) == {(m, s) for m in tsne.MODALITIES for s in tsne.STAGES}
    assert stages.features[("visual", "input")].shape == (20, 512)
    np.testing.assert_allclose(stages.features[("visual", "input")][13], visual[1, 3].mean((0, 1)))
    np.testing.assert_array_equal(
        stages.features[("audio", "psp")][13], internals["audio_psp"][1, 3]
    )
    np.testing.assert_array_equal(stages.labels, labels.reshape(-1))


def test_command_draws_six_panels(tmp_path, model_file, features_file):
    assert_draws_figure(tmp_path, model_file, features_file)


def test_class_separation_is_higher_for_clustered_features():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2, 28], 10)
    centres = rng.normal(size=(29, 16)) * 5
    clustered = centres[labels] + rng.normal(size=(40, 16)) * 0.1
    noise = rng.normal(size=(40, 16))
    stages = tsne.FeatureStages({("audio", "input"): noise, ("audio", "psp"): clustered}, labels)
    separation = tsne.class_separation(stages)
    assert separation[("audio", "psp")] > 0.9 > separation[("audio", "input")]
    single = tsne.FeatureStages({("audio", "input"): noise}, np.zeros(40, int))
    assert tsne.class_separation(single) == {("audio", "input"): None}


@pytest.fixture(scope="module")
def avel_model_file(tmp_path_factory):
    """An AVEL network (random weights): it has Bi-LSTM outputs but no PSP."""
    from ave_tf.config import AVELFullySupervisedConfig
    from ave_tf.models import model_for_config

    path = tmp_path_factory.mktemp("avel") / "avel.keras"
    model_for_config(AVELFullySupervisedConfig()).save(path)
    return path


def test_avel_gets_the_input_and_bi_lstm_stages(tmp_path, avel_model_file, features_file):
    rng = np.random.default_rng(0)
    internals = {name: rng.normal(size=(2, 10, 256)) for name in ("audio_lstm", "visual_lstm")}
    stages = tsne.prepare_stages(
        rng.normal(size=(2, 10, 128)),
        rng.normal(size=(2, 10, 7, 7, 512)),
        internals,
        rng.integers(0, 29, (2, 10)),
    )
    assert set(stages.features) == {(m, s) for m in tsne.MODALITIES for s in ("input", "bi-lstm")}
    with pytest.raises(ValueError, match="visual_lstm"):
        tsne.prepare_stages(
            rng.normal(size=(2, 10, 128)),
            rng.normal(size=(2, 10, 7, 7, 512)),
            {"audio_lstm": internals["audio_lstm"]},
            rng.integers(0, 29, (2, 10)),
        )
    assert_draws_figure(tmp_path, avel_model_file, features_file)
