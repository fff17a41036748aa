"""Losses, loss weights and metrics to compile the PSP and AVEL networks with."""

import keras

from ave_tf.config import AVELConfig, PSPConfig
from ave_tf.losses import AVPSLoss, VideoBinaryCrossentropy
from ave_tf.metrics import SegmentAccuracy


def training_objectives(config: PSPConfig | AVELConfig) -> tuple[dict, dict, dict]:
    """``(losses, loss_weights, metrics)`` keyed by output name, for ``model.compile``.

    PSP and AVEL get the same objectives (the PSP authors' recipe, with which they trained
    AVEL for the paper's Table 2; ``att_Net``'s own scripts use a multi-label soft-margin loss
    on softmax outputs instead).

    Fully supervised: cross-entropy on ``segment_logits`` (mean over batch * 10 segments) plus
    ``avps_weight`` * AVPS on ``av_similarity`` (dropped when the weight is 0); targets
    ``{"segment_logits": labels, "av_similarity": labels}`` with labels (batch, 10) int.
    Weakly supervised: BCE on ``video_probabilities`` against ``prob_label`` (batch, 29).
    Both report ``segment_accuracy`` on ``segment_logits``.
    """
    metrics = {"segment_logits": [SegmentAccuracy()]}
    if not isinstance(config, PSPConfig | AVELConfig):
        raise TypeError(f"config must be a PSP or AVEL config; got {type(config).__name__}")
    if config.SETTING == "fully":
        losses = {
            "segment_logits": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, name="cross_entropy"
            )
        }
        weights = {"segment_logits": 1.0}
        if config.avps_weight > 0:
            losses["av_similarity"] = AVPSLoss(config.epsilon)
            weights["av_similarity"] = config.avps_weight
        return losses, weights, metrics
    return (
        {"video_probabilities": VideoBinaryCrossentropy()},
        {"video_probabilities": 1.0},
        metrics,
    )


def training_view(model: keras.Model, config: PSPConfig | AVELConfig) -> keras.Model:
    """``model``'s layers and weights with only the outputs ``training_objectives`` targets.

    Keras 3.15 ``fit`` with dict outputs and dict metrics looks up a target for EVERY output
    (``CompileMetrics._flatten_y``), while the input pipelines (``ave_tf.data``) provide
    targets only for the outputs with a loss or a metric. Compiling this view instead of the
    full model trains exactly those outputs; its variables are the full model's.
    """
    losses, _, metrics = training_objectives(config)
    outputs = {
        name: model.output[name] for name in model.output if name in losses or name in metrics
    }
    return keras.Model(model.inputs, outputs, name=f"{model.name}_training")
