"""Connections: the drawn matrices are the model's own beta and gamma."""

import numpy as np
import pytest

from ave_tf.videos import read_features_file
from ave_tf.visualize import commands, connections
from ave_tf.visualize.conftest import expected_pixels, make_options, png_size


@pytest.fixture(scope="module")
def inspected(model_file, features_file):
    model = commands.load_inspectable_model(model_file)
    videos = read_features_file(features_file)
    return model, videos, commands.run_model(model, videos, batch_size=4)


def test_prepared_matrices_equal_the_models_gamma_and_beta(inspected):
    model, videos, internals = inspected
    prepared = connections.prepare_connections(internals, 1, videos.video_ids[1], 0.099)
    # The same network called directly (no expose_internals involved on this side).
    psp = model.get_layer("psp")
    lstm = {name: model.get_layer(f"{name}_lstm").output for name in ("audio", "visual")}
    import keras

    probe = keras.Model(model.input, psp(lstm["visual"], lstm["audio"]))
    direct = probe.predict(videos.select([1]).inputs, verbose=0)
    for name in connections.MATRICES:
        np.testing.assert_allclose(prepared.matrices[name], direct[name][0], atol=1e-6)


def test_gamma_is_beta_thresholded_at_the_models_tau(inspected):
    model, videos, internals = inspected
    tau = connections.psp_tau(model)
    assert tau == pytest.approx(0.099)
    prepared = connections.prepare_connections(internals, 0, videos.video_ids[0], tau)
    for direction in ("va", "av"):
        beta = prepared.matrices[f"beta_{direction}"]
        kept = beta * (beta > tau)
        expected = kept / (kept.sum(-1, keepdims=True) + 1e-8)  # fully: rows renormalised
        np.testing.assert_allclose(prepared.matrices[f"gamma_{direction}"], expected, atol=1e-5)
        np.testing.assert_array_equal(prepared.pruned(direction), (beta > 0) & (beta <= tau))
    assert prepared.kept("gamma_va") == np.count_nonzero(prepared.matrices["gamma_va"])


def test_prepare_needs_the_internals():
    with pytest.raises(ValueError, match="lack.*gamma_va"):
        connections.prepare_connections({"beta_va": np.zeros((1, 10, 10))}, 0, "v")


def test_command_writes_one_figure_per_video(tmp_path, model_file, features_file):
    options = make_options(
        "connections", tmp_path, model=str(model_file), features=str(features_file), svg=True
    )
    written = commands.run(options)
    assert [p.name for p in written] == ["connections_clip_0.png", "connections_clip_0.svg"]
    assert png_size(written[0]) == expected_pixels(connections.SIZE_INCHES)


def test_command_refuses_a_model_without_psp_in_one_line(tmp_path, features_file):
    from ave_tf.config import AVELWeaklySupervisedConfig
    from ave_tf.errors import UsageError
    from ave_tf.models import model_for_config

    path = tmp_path / "avel.keras"
    model_for_config(AVELWeaklySupervisedConfig()).save(path)
    options = make_options(
        "connections", tmp_path / "out", model=str(path), features=str(features_file)
    )
    with pytest.raises(UsageError, match="no PSP layer"):
        commands.run(options)
    assert not (tmp_path / "out").exists()
