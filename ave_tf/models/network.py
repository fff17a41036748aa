"""The parts the PSP networks (and, for AVGA and the Bi-LSTMs, AVEL) share.

Layer names are fixed: ``ave_tf.convert`` maps the official ``state_dict`` onto them and
``expose_internals`` finds intermediate tensors by them.
"""

import keras

from ave_tf.ave import AUDIO_DIM, NUM_CLASSES, NUM_SEGMENTS, VISUAL_SHAPE
from ave_tf.config import PSPConfig
from ave_tf.initializers import torch_linear_kernel, torch_uniform
from ave_tf.layers import (
    AudioGuidedVisualAttention,
    PositiveSamplePropagation,
    SegmentSelfAttention,
    SymmetricSelfAttention,
)

AVGA_UNITS = 512
PROJECTION_UNITS = (256, 128)
"""Widths of the official two-layer, bias-free feature projections (fa, fv)."""


def model_inputs() -> dict:
    """The serving-wide inputs: ``audio`` (batch, 10, 128) and ``visual`` (batch, 10, 7, 7, 512)."""
    return {
        "audio": keras.Input((NUM_SEGMENTS, AUDIO_DIM), name="audio"),
        "visual": keras.Input((NUM_SEGMENTS, *VISUAL_SHAPE), name="visual"),
    }


def two_layer_projection(x, name: str):
    """Two bias-free Dense layers (256 then 128 units) with no activation between."""
    for index, units in enumerate(PROJECTION_UNITS, start=1):
        x = keras.layers.Dense(
            units, use_bias=False, kernel_initializer=torch_linear_kernel(), name=f"{name}_{index}"
        )(x)
    return x


def bidirectional_lstm(units: int, name: str) -> keras.layers.Bidirectional:
    """A Bi-LSTM (forward and backward outputs concatenated) with PyTorch's default init."""
    init = torch_uniform(units)
    lstm = keras.layers.LSTM(
        units,
        return_sequences=True,
        kernel_initializer=init,
        recurrent_initializer=init,
        bias_initializer=init,
        unit_forget_bias=False,
    )
    return keras.layers.Bidirectional(lstm, name=name)


def attend(config: PSPConfig, audio, visual):
    """AVGA: pools each segment's 7x7 visual map under the guidance of its audio.

    Args:
        config: the network's hyper-parameters.
        audio: (batch, 10, 128) audio features (projected or raw).
        visual: (batch, 10, 7, 7, 512) visual maps.

    Returns:
        (batch, 10, 512) attended visual features.
    """
    attended, _ = AudioGuidedVisualAttention(
        AVGA_UNITS, broadcast=config.avga_broadcast, name="avga"
    )(audio, visual)
    return attended


def _self_attention(config: PSPConfig, name: str) -> keras.layers.Layer:
    """The SAPSP block ``config.self_attention`` names ("official" or "transformer")."""
    if config.self_attention == "official":
        return SymmetricSelfAttention(config.epsilon, name=name)
    return SegmentSelfAttention(config.self_attention_heads, name=name)


def propagate(config: PSPConfig, audio, visual, *, output_projection: bool):
    """Optional self-attention, the two Bi-LSTMs, then PSP.

    Args:
        config: the network's hyper-parameters.
        audio: (batch, 10, 128) audio features.
        visual: (batch, 10, 128) projected visual features.
        output_projection: PSP's fully supervised ``W3`` projection.

    Returns:
        PSP's output dict (see ``PositiveSamplePropagation``).
    """
    if config.self_attention != "off":
        audio = _self_attention(config, "audio_self_attention")(audio)
        visual = _self_attention(config, "visual_self_attention")(visual)
    audio = bidirectional_lstm(config.lstm_units, "audio_lstm")(audio)
    visual = bidirectional_lstm(config.lstm_units, "visual_lstm")(visual)
    return PositiveSamplePropagation(
        units=config.psp_dim,
        tau=config.tau,
        inclusive_threshold=config.inclusive_threshold,
        renormalize=config.renormalize,
        output_projection=output_projection,
        dropout=config.dropout,
        epsilon=config.epsilon,
        layer_norm_epsilon=config.layer_norm_epsilon,
        name="psp",
    )(visual, audio)


def classify(config: PSPConfig, psp: dict):
    """Fuses PSP's outputs by averaging (Eq. 4) and scores the 29 classes per segment.

    Returns:
        (batch, 10, 29) segment scores (logits).
    """
    fused = keras.layers.Average(name="fusion")([psp["visual"], psp["audio"]])
    hidden = keras.layers.Dense(
        config.classifier_units, activation="relu", use_bias=False, name="classifier_hidden"
    )(fused)
    return keras.layers.Dense(NUM_CLASSES, use_bias=False, name="classifier_output")(hidden)


INTERNALS = (
    "visual_attention",
    "visual_attended",
    "audio_lstm",
    "visual_lstm",
    "beta_va",
    "beta_av",
    "gamma_va",
    "gamma_av",
    "audio_psp",
    "visual_psp",
)
"""Names of the intermediate tensors ``expose_internals`` adds as outputs (AVEL networks, which
have no PSP, get the first four)."""


def expose_internals(model: keras.Model) -> keras.Model:
    """The same network (shared layers and weights) with the intermediate tensors as outputs.

    Works on a freshly built model and on one loaded from a ``.keras`` file, PSP or AVEL.

    Returns:
        A model whose output dict adds: ``visual_attention`` (batch, 10, 49),
        ``visual_attended`` (batch, 10, 512), ``audio_lstm`` / ``visual_lstm`` (batch, 10, 256)
        and, for PSP networks only, ``beta_va`` / ``beta_av`` / ``gamma_va`` / ``gamma_av``
        (batch, 10, 10) and ``audio_psp`` / ``visual_psp`` (batch, 10, 256).
    """
    attended, attention = model.get_layer("avga").output
    internals = {
        "visual_attention": attention,
        "visual_attended": attended,
        "audio_lstm": model.get_layer("audio_lstm").output,
        "visual_lstm": model.get_layer("visual_lstm").output,
    }
    if any(layer.name == "psp" for layer in model.layers):
        psp = model.get_layer("psp").output
        if not isinstance(psp, dict):  # functional graphs hand back dict outputs flattened
            structure = {key: 0 for key in PositiveSamplePropagation.OUTPUT_KEYS}
            psp = keras.tree.pack_sequence_as(structure, psp)
        internals |= {
            "beta_va": psp["beta_va"],
            "beta_av": psp["beta_av"],
            "gamma_va": psp["gamma_va"],
            "gamma_av": psp["gamma_av"],
            "audio_psp": psp["audio"],
            "visual_psp": psp["visual"],
        }
    return keras.Model(model.input, {**model.output, **internals}, name=model.name)
