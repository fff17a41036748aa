"""Every ave-tf layer through the shared contract harness."""

import pytest

from ave_tf.layers import (
    AudioGuidedVisualAttention,
    PositiveSamplePropagation,
    SegmentCosineSimilarity,
    SegmentSelfAttention,
    SymmetricSelfAttention,
    WeightingBranch,
)
from ave_tf.testing.layer_harness import check_layer_contract

CASES = {
    "avga": (
        AudioGuidedVisualAttention,
        {"units": 16, "broadcast": "channel"},
        {"audio": (10, 8), "visual": (10, 3, 3, 6)},
    ),
    "psp_fully": (
        PositiveSamplePropagation,
        {"units": 8, "tau": 0.05, "renormalize": True, "output_projection": True, "dropout": 0.1},
        {"visual": (10, 8), "audio": (10, 8)},
    ),
    "psp_weakly": (
        PositiveSamplePropagation,
        {
            "units": 8,
            "tau": 0.0,
            "inclusive_threshold": True,
            "renormalize": False,
            "output_projection": False,
        },
        {"visual": (10, 8), "audio": (10, 8)},
    ),
    "weighting": (WeightingBranch, {"use_relu": False}, {"scores": (10, 29)}),
    "self_attention": (
        SegmentSelfAttention,
        {"num_heads": 2, "dropout": 0.1},
        {"x": (10, 8)},
    ),
    "symmetric_self_attention": (SymmetricSelfAttention, {"epsilon": 1e-6}, {"x": (10, 8)}),
    "cosine": (SegmentCosineSimilarity, {"epsilon": 1e-6}, {"visual": (10, 8), "audio": (10, 8)}),
}
WEIGHTLESS = {"cosine"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_contract(case, tmp_path):
    layer_class, init_kwargs, input_shapes = CASES[case]
    check_layer_contract(
        layer_class, init_kwargs, input_shapes, tmp_path, has_weights=case not in WEIGHTLESS
    )
