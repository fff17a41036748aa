"""Self-attention over the segments of one modality (the paper's SAPSP ablation)."""

import keras


@keras.saving.register_keras_serializable(package="ave_tf")
class SegmentSelfAttention(keras.layers.Layer):
    """A residual multi-head self-attention block over the T segments, then LayerNorm.

    ``y = LN(x + MHA(x, x, x))``, the attention sub-layer of a Transformer encoder (Vaswani et
    al., 2017), placed before the Bi-LSTMs in the paper's "SAPSP" variant (Table 1).

    Args:
        num_heads: attention heads (default 1); must divide the feature width.
        dropout: dropout on the attention weights (default 0).
        layer_norm_epsilon: epsilon of the LayerNorm (default 1e-6).

    Call arguments:
        x: (batch, segments, features).
        training: enables dropout.

    Returns:
        (batch, segments, features).

    Reference:
        Zhou et al., CVPR 2021, Sec. 5.2 ("Comparison with adding self-attention").
    """

    def __init__(
        self, num_heads: int = 1, dropout: float = 0.0, layer_norm_epsilon: float = 1e-6, **kwargs
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1; got {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, x_shape):
        features = x_shape[-1]
        if features % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide the feature width ({features})"
            )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, features // self.num_heads, dropout=self.dropout, name="attention"
        )
        self.attention.build(tuple(x_shape), tuple(x_shape))
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="layer_norm"
        )
        self.layer_norm.build(tuple(x_shape))

    def call(self, x, training=None):
        return self.layer_norm(x + self.attention(x, x, training=training))

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
