"""Losses of PSP: the audio-visual pair similarity (AVPS) loss and the weak video-level BCE.

The fully supervised objective is ``CE(segment logits) + lambda * AVPS`` (paper Eq. 10), with
cross-entropy averaged over all batch * T segments as in the official code.
"""

import keras
from keras import ops

from ave_tf.ave import BACKGROUND


def avps_targets(segment_labels):
    """The AVPS target G of each video, built from its own segment labels.

    ``g_t = 1/n`` on the n segments labelled with the video's event category and 0 elsewhere;
    a video without any event segment uses its background segments instead. Unlike the official
    loader, nothing is carried over between videos or batches.

    Args:
        segment_labels: (batch, T) integer class ids (``BACKGROUND`` = 28 for background).

    Returns:
        (batch, T) float32 targets whose rows sum to 1.
    """
    labels = ops.cast(segment_labels, "int32")
    is_event = labels != BACKGROUND
    # A video has one event category; the max over its event segments picks it out.
    category = ops.max(ops.where(is_event, labels, -1), axis=-1, keepdims=True)
    target_class = ops.where(category < 0, BACKGROUND, category)
    match = ops.cast(labels == target_class, "float32")
    return match / ops.sum(match, axis=-1, keepdims=True)


def avps_loss(segment_labels, av_similarity, epsilon: float = 1e-8):
    """AVPS loss per video (paper Eq. 8-9 as the official code computes it).

    ``s = relu(cos)``, ``s = s / (sum_t s + epsilon)``, loss = mean over t of (s_t - g_t)^2.

    Args:
        segment_labels: (batch, T) integer class ids.
        av_similarity: (batch, T) cosine similarity of the PSP audio and visual features.
        epsilon: added to the sum before normalising.

    Returns:
        (batch,) loss per video; its batch mean is the mean over batch * T segments.
    """
    similarity = ops.relu(ops.cast(av_similarity, "float32"))
    similarity = similarity / (ops.sum(similarity, axis=-1, keepdims=True) + epsilon)
    return ops.mean(ops.square(similarity - avps_targets(segment_labels)), axis=-1)


def video_binary_crossentropy(prob_label, video_probabilities):
    """Binary cross-entropy of the weak video prediction o against Y_weak, per video.

    Matches ``torch.nn.BCELoss``: each log is clamped at -100 instead of clipping the input.

    Args:
        prob_label: (batch, C) targets in [0, 1] (the mean of the segment one-hots).
        video_probabilities: (batch, C) predicted probabilities o.

    Returns:
        (batch,) loss per video (mean over the C classes).
    """
    target = ops.cast(prob_label, "float32")
    prob = ops.cast(video_probabilities, "float32")
    log_p = ops.maximum(ops.log(prob), -100.0)
    log_not_p = ops.maximum(ops.log(1.0 - prob), -100.0)
    return -ops.mean(target * log_p + (1.0 - target) * log_not_p, axis=-1)


@keras.saving.register_keras_serializable(package="ave_tf")
class AVPSLoss(keras.losses.Loss):
    """Keras wrapper of ``avps_loss``: ``y_true`` segment labels (batch, T), ``y_pred`` cosines.

    Args:
        epsilon: added to the similarity sum before normalising (default 1e-8).
    """

    def __init__(self, epsilon: float = 1e-8, name: str = "avps", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return avps_loss(y_true, y_pred, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="ave_tf")
class VideoBinaryCrossentropy(keras.losses.Loss):
    """Keras wrapper of ``video_binary_crossentropy``: (batch, C) targets and probabilities."""

    def __init__(self, name: str = "video_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return video_binary_crossentropy(y_true, y_pred)
