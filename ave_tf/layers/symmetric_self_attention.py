"""The self-attention the released PSP code defines for its SAPSP ablation."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ave_tf")
class SymmetricSelfAttention(keras.layers.Layer):
    """Residual self-attention over the T segments with a symmetric, l1-normalised relation.

    With x (T, D) one video's features of one modality and three linear maps with bias,
    ``phi = x W_phi + b``, ``theta = x W_theta + b``, ``g = x W_g + b`` (each (T, D)):
    ``r = relu(phi theta^T / sqrt(D))`` (T, T), symmetrised ``r = (r + r^T) / 2``, rows
    l1-normalised ``r = r / (sum_row r + epsilon)``, output ``x + r g``. The three maps are
    D -> D wide because of the residual add (the released class's ``hidden_dim`` must equal
    the feature width for that add to work), Glorot-uniform with zero biases as released.

    This is the ``SelfAttention`` class of the released ``fully_model.py`` (its forward pass
    never calls it); ``SegmentSelfAttention`` is the Transformer-style alternative.

    Args:
        epsilon: added to the row sums before the l1 normalisation (default 1e-8).

    Call arguments:
        x: (batch, segments, features).

    Returns:
        (batch, segments, features).

    Reference:
        Zhou et al., CVPR 2021, Sec. 5.2 ("Comparison with adding self-attention", Table 1's
        SAPSP).
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0; got {epsilon}")
        self.epsilon = epsilon

    def build(self, x_shape):
        features = x_shape[-1]
        self.phi = keras.layers.Dense(features, name="phi")
        self.theta = keras.layers.Dense(features, name="theta")
        self.g = keras.layers.Dense(features, name="g")
        for dense in (self.phi, self.theta, self.g):
            dense.build(tuple(x_shape))

    def call(self, x):
        features = ops.cast(ops.shape(x)[-1], x.dtype)
        relation = ops.matmul(self.phi(x), ops.swapaxes(self.theta(x), 1, 2))
        relation = ops.relu(relation / ops.sqrt(features))
        relation = (relation + ops.swapaxes(relation, 1, 2)) / 2
        relation = relation / (ops.sum(relation, axis=-1, keepdims=True) + self.epsilon)
        return x + ops.matmul(relation, self.g(x))

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
