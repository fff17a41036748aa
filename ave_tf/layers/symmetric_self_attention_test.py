"""SymmetricSelfAttention against a NumPy loop over the released SelfAttention's equations."""

import numpy as np
import pytest

from ave_tf.layers import SymmetricSelfAttention


def released_self_attention(x, weights, epsilon=1e-8):
    """The released ``SelfAttention.forward``, one video at a time, float64.

    ``weights``: (W_phi, b_phi, W_theta, b_theta, W_g, b_g) with Keras kernels (in, out).
    """
    w_phi, b_phi, w_theta, b_theta, w_g, b_g = (np.asarray(w, np.float64) for w in weights)
    outputs = []
    for video in np.asarray(x, np.float64):
        phi, theta, g = video @ w_phi + b_phi, video @ w_theta + b_theta, video @ w_g + b_g
        relation = np.maximum(phi @ theta.T / np.sqrt(video.shape[-1]), 0)
        relation = (relation + relation.T) / 2
        relation = relation / (relation.sum(axis=-1, keepdims=True) + epsilon)
        outputs.append(relation @ g + video)
    return np.stack(outputs)


@pytest.mark.parametrize("batch", [1, 4])
def test_matches_the_released_equations(batch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 10, 16)).astype("float32")
    layer = SymmetricSelfAttention()
    layer.build(x.shape)
    # Non-zero biases (released init: zeros) so that a dropped bias cannot pass.
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    expected = released_self_attention(x, weights)
    got = np.asarray(layer(x))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(got - x).max() > 0.1  # the attention term is not negligible


def test_relation_is_symmetric_before_normalisation_so_equal_rows_weigh_alike():
    """Two identical segments get identical outputs (a property of the symmetric relation)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 10, 8)).astype("float32")
    x[0, 7] = x[0, 2]
    got = np.asarray(SymmetricSelfAttention()(x))
    np.testing.assert_allclose(got[0, 7], got[0, 2], atol=1e-6)


def test_released_initialisation_and_width():
    layer = SymmetricSelfAttention()
    layer.build((None, 10, 12))
    assert [tuple(w.shape) for w in layer.weights] == [(12, 12), (12,)] * 3
    assert all(
        not np.asarray(bias).any() for bias in (layer.phi.bias, layer.theta.bias, layer.g.bias)
    )


def test_bad_epsilon_is_named():
    with pytest.raises(ValueError, match="epsilon"):
        SymmetricSelfAttention(epsilon=-1.0)
