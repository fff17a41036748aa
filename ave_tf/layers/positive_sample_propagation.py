"""PSP: positive sample propagation between the audio and visual segments of a video."""

import math

import keras
from keras import ops


def l1_normalize_rows(matrix, epsilon):
    """Divides each row of a non-negative (..., rows, cols) matrix by its sum + epsilon."""
    return matrix / (ops.sum(matrix, axis=-1, keepdims=True) + epsilon)


@keras.saving.register_keras_serializable(package="ave_tf")
class PositiveSamplePropagation(keras.layers.Layer):
    """Lets each segment of one modality aggregate the positively related segments of the other.

    With v, a the Bi-LSTM outputs (batch, T, d) and paper symbols W1v, W1a, W2v, W2a, W3:
    ``beta_va = relu((v W1v)(a W1a)^T / sqrt(d))`` (rows: visual segments, columns: audio
    segments), ``beta_av = beta_va^T``, both l1-normalised per row (Eq. 1);
    ``gamma = beta * [beta > tau]`` (Eq. 2; ``>=`` with ``inclusive_threshold``), optionally
    l1-normalised again; ``v_psp = v + gamma_va (a W2a)``, ``a_psp = a + gamma_av (v W2v)``
    (Eq. 3); finally a LayerNorm shared by both modalities, preceded (fully supervised) by
    ``dropout(relu(x W3))`` (Eq. 4). As in the official code each projection is followed by ReLU
    and dropout, and none has a bias.

    Args:
        units: d, the width of the inputs and of every projection (official: 256).
        tau: threshold τ; ``-inf`` keeps all connections, ``inf`` propagates nothing.
        inclusive_threshold: keep entries equal to tau too (default False: strictly greater).
        renormalize: l1-normalise gamma's rows after thresholding (official: fully only).
        output_projection: apply ``dropout(relu(x W3))`` before the LayerNorm (fully only).
        dropout: rate of the dropout after each projection.
        epsilon: added to row sums in the l1 normalisations.
        layer_norm_epsilon: epsilon of the shared LayerNorm.

    Call arguments:
        visual: v, (batch, T, units).
        audio: a, (batch, T, units).
        training: enables dropout.

    Returns:
        A dict: ``visual`` v_psp and ``audio`` a_psp (batch, T, units); ``beta_va``,
        ``beta_av`` (batch, T, T) before thresholding; ``gamma_va``, ``gamma_av`` (batch, T, T).

    Reference:
        Zhou et al., CVPR 2021, Sec. 4.3-4.4, Eq. 1-4; official code as in reference.md §2-3.
    """

    OUTPUT_KEYS = ("visual", "audio", "beta_va", "beta_av", "gamma_va", "gamma_av")

    def __init__(
        self,
        units: int = 256,
        tau: float = 0.099,
        inclusive_threshold: bool = False,
        renormalize: bool = True,
        output_projection: bool = True,
        dropout: float = 0.1,
        epsilon: float = 1e-8,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1; got {units}")
        tau = float(tau)
        if math.isnan(tau):
            raise ValueError("tau must not be NaN")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.units = units
        self.tau = tau
        self.inclusive_threshold = inclusive_threshold
        self.renormalize = renormalize
        self.output_projection = output_projection
        self.dropout = dropout
        self.epsilon = epsilon
        self.layer_norm_epsilon = layer_norm_epsilon
        names = ["w1_visual", "w1_audio", "w2_visual", "w2_audio"]
        if output_projection:
            names += ["w3_visual", "w3_audio"]
        self.projections = {
            name: keras.layers.Dense(units, use_bias=False, name=name) for name in names
        }
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="layer_norm"
        )

    def build(self, visual_shape, audio_shape):
        for layer in self.projections.values():
            layer.build((None, None, self.units))
        self.layer_norm.build((None, None, self.units))

    def _project(self, name, x, training):
        return self.dropout_layer(ops.relu(self.projections[name](x)), training=training)

    def _threshold(self, beta):
        keep = beta >= self.tau if self.inclusive_threshold else beta > self.tau
        gamma = ops.where(keep, beta, ops.zeros_like(beta))
        return l1_normalize_rows(gamma, self.epsilon) if self.renormalize else gamma

    def call(self, visual, audio, training=None):
        v_w2 = self._project("w2_visual", visual, training)  # official v_L1
        v_w1 = self._project("w1_visual", visual, training)  # official v_L2
        a_w1 = self._project("w1_audio", audio, training)  # official a_L1
        a_w2 = self._project("w2_audio", audio, training)  # official a_L2
        similarity = ops.relu(
            ops.matmul(v_w1, ops.transpose(a_w1, (0, 2, 1))) / math.sqrt(self.units)
        )
        beta_va = l1_normalize_rows(similarity, self.epsilon)
        beta_av = l1_normalize_rows(ops.transpose(similarity, (0, 2, 1)), self.epsilon)
        gamma_va = self._threshold(beta_va)
        gamma_av = self._threshold(beta_av)
        visual_psp = visual + ops.matmul(gamma_va, a_w2)
        audio_psp = audio + ops.matmul(gamma_av, v_w2)
        if self.output_projection:
            visual_psp = self._project("w3_visual", visual_psp, training)
            audio_psp = self._project("w3_audio", audio_psp, training)
        return {
            "visual": self.layer_norm(visual_psp),
            "audio": self.layer_norm(audio_psp),
            "beta_va": beta_va,
            "beta_av": beta_av,
            "gamma_va": gamma_va,
            "gamma_av": gamma_av,
        }

    def compute_output_shape(self, visual_shape, audio_shape):
        batch, segments, _ = visual_shape
        pair = (batch, segments, segments)
        features = (batch, segments, self.units)
        return {
            "visual": features,
            "audio": features,
            "beta_va": pair,
            "beta_av": pair,
            "gamma_va": pair,
            "gamma_av": pair,
        }

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "tau": self.tau,
            "inclusive_threshold": self.inclusive_threshold,
            "renormalize": self.renormalize,
            "output_projection": self.output_projection,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
