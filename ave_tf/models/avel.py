"""AVEL, the paper's baseline: ``att_Net`` of Tian et al., ECCV 2018 (YapengTian/AVE-ECCV18).

Both settings share one trunk (``att_Net`` in ``models.py`` and ``models_weakly.py``):
AVGA pools each segment's 7x7 visual map under the guidance of the raw audio; one Bi-LSTM per
modality (128 units per direction: audio 128 -> 256, attended visual 512 -> 256); the two
outputs concatenated audio first (batch, 10, 512); ReLU; Dense(64) with bias; ReLU;
Dense(29) with bias -> segment scores. There is no feature projection, no PSP, no LayerNorm and
no dropout. Initialisation as ``att_Net``: Glorot uniform on AVGA's five maps and on the two
classifier kernels, PyTorch defaults (``U(+-1/sqrt(fan))``) on their biases and the LSTMs.

Fully supervised: softmax over the 29 classes per segment. ``av_similarity`` is the cosine of
the audio and visual Bi-LSTM outputs per segment, for PSP's AVPS loss (``avps_weight``, default
0 = AVEL as published). Those are the features the choice rests on: they are AVEL's last
per-modality features (the classifier sees only their concatenation), the counterpart of PSP's
``v_psp`` / ``a_psp`` (the last per-modality features before fusion, where PSP applies AVPS),
both 256 wide; taken before the ReLU, so that the cosine can say "dissimilar" (after the ReLU
both vectors are non-negative and their cosine never drops below 0).

Weakly supervised (``models_weakly.py``): segment scores, optionally times PSP's weighting
branch, pooled to the video by the max over the 10 segments (``att_Net``'s weak variant;
``video_pooling="mean"`` gives PSP's Eq. 5-6 average), softmax -> ``video_probabilities``.
"""

import keras

from ave_tf.ave import NUM_CLASSES
from ave_tf.config import AVELConfig, AVELFullySupervisedConfig, AVELWeaklySupervisedConfig
from ave_tf.initializers import torch_uniform
from ave_tf.layers import SegmentCosineSimilarity, WeightingBranch
from ave_tf.models import network


def _segment_scores(config: AVELConfig, inputs: dict):
    """The ``att_Net`` trunk: (batch, 10, 29) segment scores and the two Bi-LSTM outputs."""
    audio = inputs["audio"]
    attended = network.attend(config, audio, inputs["visual"])
    audio_lstm = network.bidirectional_lstm(config.lstm_units, "audio_lstm")(audio)
    visual_lstm = network.bidirectional_lstm(config.lstm_units, "visual_lstm")(attended)
    fused = keras.layers.Concatenate(name="fusion")([audio_lstm, visual_lstm])
    fused = keras.layers.ReLU(name="fusion_relu")(fused)
    hidden = keras.layers.Dense(
        config.classifier_units,
        activation="relu",
        bias_initializer=torch_uniform(4 * config.lstm_units),
        name="classifier_hidden",
    )(fused)
    scores = keras.layers.Dense(
        NUM_CLASSES,
        bias_initializer=torch_uniform(config.classifier_units),
        name="classifier_output",
    )(hidden)
    return scores, audio_lstm, visual_lstm


def avel_fully_supervised_model(
    config: AVELFullySupervisedConfig = AVELFullySupervisedConfig(),
    with_internals: bool = False,
) -> keras.Model:
    """Builds the fully supervised AVEL network (``att_Net``, see the module docstring).

    Args:
        config: hyper-parameters; the defaults are ``att_Net``'s.
        with_internals: also output AVGA's attention and the Bi-LSTM outputs
            (see ``expose_internals``).

    Returns:
        A functional model. Inputs: ``audio`` (batch, 10, 128), ``visual``
        (batch, 10, 7, 7, 512). Outputs: ``segment_logits`` (batch, 10, 29),
        ``segment_probabilities`` (batch, 10, 29), ``av_similarity`` (batch, 10).
    """
    if not isinstance(config, AVELFullySupervisedConfig):
        raise TypeError(f"config must be an AVELFullySupervisedConfig; got {type(config).__name__}")
    inputs = network.model_inputs()
    logits, audio_lstm, visual_lstm = _segment_scores(config, inputs)
    outputs = {
        "segment_logits": logits,
        "segment_probabilities": keras.layers.Softmax(name="segment_probabilities")(logits),
        "av_similarity": SegmentCosineSimilarity(config.epsilon, name="av_similarity")(
            visual_lstm, audio_lstm
        ),
    }
    model = keras.Model(inputs, outputs, name="avel_fully")
    return network.expose_internals(model) if with_internals else model


def avel_weakly_supervised_model(
    config: AVELWeaklySupervisedConfig = AVELWeaklySupervisedConfig(),
    with_internals: bool = False,
) -> keras.Model:
    """Builds the weakly supervised AVEL network (``att_Net`` of ``models_weakly.py``).

    Args:
        config: hyper-parameters; the defaults are ``att_Net``'s (no weighting branch, max
            pooling over the segments).
        with_internals: also output AVGA's attention and the Bi-LSTM outputs.

    Returns:
        A functional model. Inputs: ``audio`` (batch, 10, 128), ``visual``
        (batch, 10, 7, 7, 512). Outputs: ``segment_logits`` (batch, 10, 29) the segment
        scores (times the weighting branch's weights when it is on),
        ``segment_probabilities`` (batch, 10, 29) their softmax, ``video_probabilities``
        (batch, 29) the softmax of the pooled scores.
    """
    if not isinstance(config, AVELWeaklySupervisedConfig):
        raise TypeError(
            f"config must be an AVELWeaklySupervisedConfig; got {type(config).__name__}"
        )
    inputs = network.model_inputs()
    scores, _, _ = _segment_scores(config, inputs)
    if config.weighting_branch:
        weights = WeightingBranch(config.weighting_relu, name="weighting_branch")(scores)
        scores = keras.layers.Multiply(name="weighted_scores")([scores, weights])
    pooling = {
        "max": keras.layers.GlobalMaxPooling1D,
        "mean": keras.layers.GlobalAveragePooling1D,
    }[config.video_pooling]
    video_scores = pooling(name="video_scores")(scores)
    outputs = {
        "segment_logits": scores,
        "segment_probabilities": keras.layers.Softmax(name="segment_probabilities")(scores),
        "video_probabilities": keras.layers.Softmax(name="video_probabilities")(video_scores),
    }
    model = keras.Model(inputs, outputs, name="avel_weakly")
    return network.expose_internals(model) if with_internals else model
