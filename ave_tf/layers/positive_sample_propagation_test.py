"""PSP behaviour on hand-made inputs whose similarities are exact in float32.

With units d = 4, identity projections and one-hot visual vectors e_i, the raw similarity is
``S[i, j] = a_j[i] / sqrt(4)``, so choosing ``a = 2 S^T`` sets S exactly. Rows of S below sum to
4, so every normalised entry (k / 4) is exact and ties with tau are real ties.
"""

import math

import numpy as np
import pytest

from ave_tf.layers import PositiveSamplePropagation

# Raw similarities S (visual i x audio j); each row sums to 4.
SIMILARITY = np.array(
    [[2.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 1.0]],
    dtype="float32",
)


def _layer(**kwargs):
    layer = PositiveSamplePropagation(units=4, dropout=0.0, **kwargs)
    layer.build((None, 4, 4), (None, 4, 4))
    for dense in layer.projections.values():
        dense.kernel.assign(np.eye(4, dtype="float32"))
    return layer


def _inputs():
    visual = np.eye(4, dtype="float32")[None]
    audio = (2.0 * SIMILARITY.T)[None]
    return visual, audio


def _row_normalized(matrix):
    return matrix / (matrix.sum(-1, keepdims=True) + 1e-8)


def _layer_norm(x, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps)


def _run(**kwargs):
    out = _layer(**kwargs)(*_inputs())
    return {key: np.asarray(value)[0] for key, value in out.items()}


def test_beta_is_the_row_normalized_similarity_both_ways():
    out = _run(tau=0.0)
    np.testing.assert_allclose(out["beta_va"], SIMILARITY / 4.0, atol=1e-7)
    np.testing.assert_allclose(out["beta_av"], _row_normalized(SIMILARITY.T), atol=1e-7)


def test_threshold_keeps_only_entries_strictly_above_tau():
    out = _run(tau=0.25, renormalize=False)
    beta = SIMILARITY / 4.0
    expected = np.where(beta > 0.25, beta, 0.0)
    np.testing.assert_array_equal(out["gamma_va"], expected)
    # The ties at exactly 0.25 (row 0 columns 1-2, all of row 1, row 3 column 3) are dropped.
    assert out["gamma_va"][0, 1] == 0.0 and out["gamma_va"][1].sum() == 0.0


def test_inclusive_threshold_keeps_the_ties():
    out = _run(tau=0.25, renormalize=False, inclusive_threshold=True)
    beta = SIMILARITY / 4.0
    np.testing.assert_array_equal(out["gamma_va"], np.where(beta >= 0.25, beta, 0.0))


def test_renormalized_rows_sum_to_one_or_zero():
    out = _run(tau=0.25, renormalize=True)
    sums = out["gamma_va"].sum(-1)
    # Row 1 has no entry above tau: nothing propagates to it.
    np.testing.assert_allclose(sums, [1.0, 0.0, 1.0, 1.0], atol=1e-6)


def test_without_renormalization_rows_sum_to_the_kept_mass():
    out = _run(tau=0.25, renormalize=False)
    beta = SIMILARITY / 4.0
    np.testing.assert_allclose(out["gamma_va"].sum(-1), (beta * (beta > 0.25)).sum(-1))


def test_minus_infinity_keeps_every_connection():
    out = _run(tau=-math.inf, renormalize=False)
    np.testing.assert_array_equal(out["gamma_va"], out["beta_va"])
    np.testing.assert_array_equal(out["gamma_av"], out["beta_av"])


def test_off_propagates_nothing():
    visual, audio = _inputs()
    out = _run(tau=math.inf, output_projection=False)
    assert not out["gamma_va"].any() and not out["gamma_av"].any()
    np.testing.assert_allclose(out["visual"], _layer_norm(visual[0]), atol=1e-5)
    np.testing.assert_allclose(out["audio"], _layer_norm(audio[0]), atol=1e-5)


def test_propagation_adds_the_gamma_weighted_other_modality():
    visual, audio = _inputs()
    out = _run(tau=0.1, renormalize=True, output_projection=False)
    beta_va = SIMILARITY / 4.0
    gamma_va = _row_normalized(np.where(beta_va > 0.1, beta_va, 0.0))
    beta_av = _row_normalized(SIMILARITY.T)
    gamma_av = _row_normalized(np.where(beta_av > 0.1, beta_av, 0.0))
    # Identity W2 and non-negative inputs: the ReLU'd projections are the inputs themselves.
    expected_visual = _layer_norm(visual[0] + gamma_va @ audio[0])
    expected_audio = _layer_norm(audio[0] + gamma_av @ visual[0])
    np.testing.assert_allclose(out["visual"], expected_visual, atol=1e-5)
    np.testing.assert_allclose(out["audio"], expected_audio, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tau": math.nan}, "tau"), ({"dropout": 1.0}, "dropout"), ({"units": 0}, "units")],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PositiveSamplePropagation(**kwargs)
