"""Per-segment cosine similarity of the audio and visual PSP features."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ave_tf")
class SegmentCosineSimilarity(keras.layers.Layer):
    """``cos_t = <v_t, a_t> / sqrt(max(|v_t|^2 |a_t|^2, eps^2))``, as ``torch.cosine_similarity``.

    The fully supervised network's audio-visual similarity, fed to the AVPS loss (the paper's
    Eq. 8 writes an l1-normalised product; the official code uses this cosine).

    Args:
        epsilon: lower bound of the norm product (default 1e-8).

    Call arguments:
        visual: (batch, segments, features).
        audio: (batch, segments, features).

    Returns:
        (batch, segments) cosine similarities in [-1, 1].
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, visual_shape, audio_shape):
        pass  # no weights

    def call(self, visual, audio):
        dot = ops.sum(visual * audio, axis=-1)
        norms = ops.sum(ops.square(visual), axis=-1) * ops.sum(ops.square(audio), axis=-1)
        return dot / ops.sqrt(ops.maximum(norms, self.epsilon**2))

    def compute_output_shape(self, visual_shape, audio_shape):
        return tuple(visual_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
