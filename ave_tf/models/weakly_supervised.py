"""The weakly supervised PSP network (reference.md §3)."""

import keras

from ave_tf.config import WeaklySupervisedConfig
from ave_tf.initializers import torch_linear_kernel, torch_uniform
from ave_tf.layers import WeightingBranch
from ave_tf.models import network


def weakly_supervised_model(
    config: WeaklySupervisedConfig = WeaklySupervisedConfig(), with_internals: bool = False
) -> keras.Model:
    """Builds the weakly supervised PSP network.

    raw audio -> AVGA with the visual maps -> one Dense(128) with bias (linear_v) -> Bi-LSTMs ->
    PSP (no W3, shared LayerNorm) -> mean fusion -> classifier scores f^h -> weighting branch
    ``f^h * phi`` -> video prediction ``o = softmax(mean_t(f^h * phi))`` (Eq. 5).

    Args:
        config: hyper-parameters; the defaults are the official ones.
        with_internals: also output the intermediate tensors (see ``expose_internals``).

    Returns:
        A functional model. Inputs: ``audio`` (batch, 10, 128), ``visual``
        (batch, 10, 7, 7, 512). Outputs: ``segment_logits`` (batch, 10, 29) the weighted
        scores, ``segment_probabilities`` (batch, 10, 29) their softmax, ``video_probabilities``
        (batch, 29).
    """
    if not isinstance(config, WeaklySupervisedConfig):
        raise TypeError(f"config must be a WeaklySupervisedConfig; got {type(config).__name__}")
    inputs = network.model_inputs()
    audio = inputs["audio"]
    attended = network.attend(config, audio, inputs["visual"])
    visual = keras.layers.Dense(
        network.PROJECTION_UNITS[-1],
        kernel_initializer=torch_linear_kernel(),
        bias_initializer=torch_uniform(network.AVGA_UNITS),
        name="visual_projection",
    )(attended)
    psp = network.propagate(config, audio, visual, output_projection=False)
    scores = network.classify(config, psp)
    if config.weighting_branch:
        weights = WeightingBranch(config.weighting_relu, name="weighting_branch")(scores)
        scores = keras.layers.Multiply(name="weighted_scores")([scores, weights])
    video_scores = keras.layers.GlobalAveragePooling1D(name="video_scores")(scores)
    outputs = {
        "segment_logits": scores,
        "segment_probabilities": keras.layers.Softmax(name="segment_probabilities")(scores),
        "video_probabilities": keras.layers.Softmax(name="video_probabilities")(video_scores),
    }
    model = keras.Model(inputs, outputs, name="psp_weakly")
    return network.expose_internals(model) if with_internals else model
