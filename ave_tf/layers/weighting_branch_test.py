"""The weighting branch against NumPy: phi = sigmoid(relu(scores W_6))."""

import numpy as np
import pytest

from ave_tf.layers import WeightingBranch


@pytest.mark.parametrize("use_relu", [True, False])
def test_matches_numpy(use_relu):
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 3, (4, 10, 29)).astype("float32")
    layer = WeightingBranch(use_relu=use_relu)
    phi = np.asarray(layer(scores))
    z = scores @ np.asarray(layer.projection.kernel)
    if use_relu:
        z = np.maximum(z, 0.0)
    np.testing.assert_allclose(phi, 1.0 / (1.0 + np.exp(-z)), atol=1e-6)
    assert phi.shape == (4, 10, 1)
    if use_relu:
        assert phi.min() >= 0.5
    else:
        assert phi.min() < 0.5  # some scores project below zero with these inputs
