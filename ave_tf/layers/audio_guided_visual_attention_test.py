"""AVGA against a NumPy computation of the same equations, for both broadcasts."""

import numpy as np
import pytest

from ave_tf.layers import AudioGuidedVisualAttention


def _numpy_avga(layer, audio, visual, broadcast):
    weights = {
        name: [np.asarray(w) for w in getattr(layer, name).weights]
        for name in ("affine_video", "affine_audio", "affine_v", "affine_g", "affine_h")
    }
    batch, segments, height, width, channels = visual.shape
    cells = visual.reshape(batch, segments, height * width, channels)
    kernel, bias = weights["affine_video"]
    v = np.maximum(cells @ kernel + bias, 0.0)
    kernel, bias = weights["affine_audio"]
    g = np.maximum(audio @ kernel + bias, 0.0)
    content = v @ weights["affine_v"][0]  # [b, t, p, k]
    audio_term = g @ weights["affine_g"][0]  # [b, t, n]
    if broadcast == "position":
        content = content + audio_term[..., :, None]
    else:
        content = content + audio_term[..., None, :]
    z = (np.tanh(content) @ weights["affine_h"][0])[..., 0]
    alpha = np.exp(z - z.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    return np.einsum("btn,btnc->btc", alpha, cells), alpha


@pytest.mark.parametrize("broadcast", ["position", "channel"])
def test_matches_numpy_and_weights_sum_to_one(broadcast):
    rng = np.random.default_rng(1)
    audio = rng.uniform(0, 2, (2, 10, 8)).astype("float32")
    visual = rng.uniform(0, 1, (2, 10, 7, 7, 16)).astype("float32")
    layer = AudioGuidedVisualAttention(units=12, broadcast=broadcast)
    attended, alpha = layer(audio, visual)
    alpha = np.asarray(alpha)
    assert alpha.shape == (2, 10, 49)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-6)
    assert (alpha >= 0).all()
    expected_attended, expected_alpha = _numpy_avga(layer, audio, visual, broadcast)
    np.testing.assert_allclose(alpha, expected_alpha, atol=1e-6)
    np.testing.assert_allclose(np.asarray(attended), expected_attended, atol=1e-5)


def test_the_two_broadcasts_differ():
    rng = np.random.default_rng(2)
    audio = rng.uniform(0, 2, (1, 10, 8)).astype("float32")
    visual = rng.uniform(0, 1, (1, 10, 2, 2, 4)).astype("float32")
    layer = AudioGuidedVisualAttention(units=6, broadcast="position")
    layer(audio, visual)
    other = AudioGuidedVisualAttention(units=6, broadcast="channel")
    other(audio, visual)
    other.set_weights(layer.get_weights())
    assert not np.allclose(np.asarray(layer(audio, visual)[1]), np.asarray(other(audio, visual)[1]))


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="broadcast"):
        AudioGuidedVisualAttention(broadcast="rows")
    with pytest.raises(ValueError, match="visual"):
        AudioGuidedVisualAttention()(
            np.zeros((1, 10, 8), "float32"), np.zeros((1, 10, 4), "float32")
        )
