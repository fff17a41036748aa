"""Segment accuracy: the AVE localization metric."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ave_tf")
class SegmentAccuracy(keras.metrics.Metric):
    """Fraction of segments, over all segments of all videos seen, whose argmax class is right.

    Correct and total counts are kept as sums, so replicas and batches of any size aggregate
    exactly.

    Call arguments (``update_state``):
        y_true: (batch, T) integer segment labels.
        y_pred: (batch, T, C) segment logits or probabilities.
        sample_weight: optional (batch,) or (batch, T) weights.
    """

    def __init__(self, name: str = "segment_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        hits = ops.cast(ops.argmax(y_pred, axis=-1) == labels, "float32")
        weights = ops.ones_like(hits)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) < len(hits.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        self.correct.assign_add(ops.sum(hits * weights))
        self.total.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
