"""The weakly supervised head's weighting branch (the paper's W_6)."""

import keras
from keras import ops

from ave_tf.initializers import torch_linear_kernel


@keras.saving.register_keras_serializable(package="ave_tf")
class WeightingBranch(keras.layers.Layer):
    """Per-segment weights from the segment's class scores: ``phi = sigmoid(relu(scores W_6))``.

    The official code applies a ReLU before the sigmoid, so every weight is >= 0.5; the paper's
    Eq. 5 has none (``use_relu=False``).

    Args:
        use_relu: apply the official ReLU before the sigmoid (default True).

    Call arguments:
        scores: f^h, segment class scores (batch, segments, classes).

    Returns:
        phi, the segment weights (batch, segments, 1), to multiply the scores with.

    Reference:
        Zhou et al., CVPR 2021, Sec. 4.4, Eq. 5.
    """

    def __init__(self, use_relu: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.use_relu = use_relu
        self.projection = keras.layers.Dense(
            1, use_bias=False, kernel_initializer=torch_linear_kernel(), name="w6"
        )

    def build(self, scores_shape):
        self.projection.build(tuple(scores_shape))

    def call(self, scores):
        z = self.projection(scores)
        if self.use_relu:
            z = ops.relu(z)
        return ops.sigmoid(z)

    def compute_output_shape(self, scores_shape):
        return (*scores_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "use_relu": self.use_relu}
