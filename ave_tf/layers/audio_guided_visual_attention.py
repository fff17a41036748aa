"""AVGA: audio-guided visual attention (Tian et al., ECCV 2018), as PSP's official code runs it."""

import keras
from keras import ops

from ave_tf.initializers import torch_uniform

BROADCASTS = ("position", "channel")


@keras.saving.register_keras_serializable(package="ave_tf")
class AudioGuidedVisualAttention(keras.layers.Layer):
    """Pools each segment's visual map with spatial weights computed from its audio.

    Per segment, with V the N = H*W visual vectors (N, C) and a the audio vector:
    ``v = relu(V W_video + b)`` (N, units), ``g = relu(a W_audio + b)`` (units,),
    ``content[p, k] = (v_p W_v)[k] + (g W_g)[idx]`` (N, N) where ``idx = p`` for the official
    ``"position"`` broadcast and ``idx = k`` for the AVEL paper's ``"channel"`` one,
    ``alpha = softmax(tanh(content) W_h)`` over the N positions, output ``sum_p alpha_p V_p``.

    Args:
        units: width of the visual and audio projections (official: 512).
        broadcast: ``"position"`` (default, official) or ``"channel"`` (see above).

    Call arguments:
        audio: (batch, segments, audio_dim) audio features.
        visual: (batch, segments, H, W, C) visual feature maps.

    Returns:
        A tuple ``(attended, alpha)``: attended visual vectors (batch, segments, C) and the
        spatial attention weights (batch, segments, H*W), summing to 1 over the last axis.

    Reference:
        Zhou et al., CVPR 2021, Sec. 4.2 (AVGA from Tian et al., ECCV 2018, Eq. 1-2).
    """

    def __init__(self, units: int = 512, broadcast: str = "position", **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1; got {units}")
        if broadcast not in BROADCASTS:
            raise ValueError(f"broadcast must be one of {BROADCASTS}; got {broadcast!r}")
        self.units = units
        self.broadcast = broadcast

    def build(self, audio_shape, visual_shape):
        if len(visual_shape) != 5:
            raise ValueError(
                f"visual must be (batch, segments, H, W, C); got shape {tuple(visual_shape)}"
            )
        audio_dim = audio_shape[-1]
        height, width, channels = visual_shape[2:]
        self.positions = height * width
        self.affine_video = keras.layers.Dense(
            self.units,
            activation="relu",
            bias_initializer=torch_uniform(channels),
            name="affine_video",
        )
        self.affine_audio = keras.layers.Dense(
            self.units,
            activation="relu",
            bias_initializer=torch_uniform(audio_dim),
            name="affine_audio",
        )
        self.affine_v = keras.layers.Dense(self.positions, use_bias=False, name="affine_v")
        self.affine_g = keras.layers.Dense(self.positions, use_bias=False, name="affine_g")
        self.affine_h = keras.layers.Dense(1, use_bias=False, name="affine_h")
        segments = visual_shape[1]
        self.affine_video.build((None, channels))
        self.affine_audio.build(tuple(audio_shape))
        self.affine_v.build((None, self.units))
        self.affine_g.build((None, segments, self.units))
        self.affine_h.build((None, segments, self.positions, self.positions))

    def call(self, audio, visual):
        shape = ops.shape(visual)
        batch, segments, channels = shape[0], shape[1], shape[4]
        cells = ops.reshape(visual, (batch, segments, self.positions, channels))
        # The projections run on a 2-D (cells, channels) matrix: one plain matmul that the
        # runtime fuses with the bias and the ReLU (the bulk of the network's FLOPs).
        flat = ops.reshape(visual, (-1, channels))
        content = self.affine_v(self.affine_video(flat))  # (B*T*N, N): [p, k]
        content = ops.reshape(content, (batch, segments, self.positions, self.positions))
        audio_term = self.affine_g(self.affine_audio(audio))  # (B, T, N)
        axis = -1 if self.broadcast == "position" else -2
        content = content + ops.expand_dims(audio_term, axis)
        logits = ops.squeeze(self.affine_h(ops.tanh(content)), -1)  # (B, T, N)
        alpha = ops.softmax(logits, axis=-1)
        attended = ops.einsum("btn,btnc->btc", alpha, cells)
        return attended, alpha

    def compute_output_shape(self, audio_shape, visual_shape):
        batch, segments, height, width, channels = visual_shape
        return (batch, segments, channels), (batch, segments, height * width)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "broadcast": self.broadcast}
