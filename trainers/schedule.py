"""The official step decay of the learning rate, as a Keras `LearningRateSchedule`.

Official PSP scripts (reference.md §4) multiply the learning rate by 0.8 at the end of 0-based
epoch e when ``(e + 1) % period == 0 and e < 170`` (period 60 fully, 80 weakly). Keras calls a
schedule per optimizer step, so the epoch is ``step // steps_per_epoch``; epoch e trains with

    base * factor ** #{d < e : (d + 1) % period == 0 and d < until}.

Because it depends only on `optimizer.iterations`, it resumes correctly from a backup and
runs unchanged inside `fit`, a custom `strategy.run` loop or XLA.
"""

import keras
from keras import ops


def official_learning_rate(epoch: int, base: float, factor: float, every: int, until: int):
    """Learning rate of 0-based `epoch` in the official scripts' own terms (pure Python)."""
    decays = sum(1 for d in range(epoch) if (d + 1) % every == 0 and d < until)
    return base * factor**decays


@keras.saving.register_keras_serializable(package="ave_tf")
class OfficialStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay by `factor` after every `every` epochs, up to epoch `until`.

    Args:
        initial_learning_rate: learning rate of epoch 0 (official: 1e-3).
        steps_per_epoch: optimizer steps per epoch (batches per epoch); >= 1.
        factor: multiplier per decay (official: 0.8).
        every: decay period in epochs (official: 60 fully, 80 weakly).
        until: decays happen only after 0-based epochs < until (official: 170).

    Call arguments:
        step: scalar int, the optimizer's iteration count.

    Returns:
        Scalar float32 learning rate.
    """

    def __init__(self, initial_learning_rate, steps_per_epoch, factor=0.8, every=60, until=170):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1; got {steps_per_epoch}")
        if every < 1:
            raise ValueError(f"every must be >= 1; got {every}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.factor = float(factor)
        self.every = int(every)
        self.until = int(until)

    def __call__(self, step):
        epoch = ops.floor_divide(ops.cast(step, "int64"), self.steps_per_epoch)
        # Decays after 0-based epochs every-1, 2*every-1, ... that are < until and < epoch.
        last_decay_epoch = ops.minimum(epoch, self.until)
        decays = ops.floor_divide(last_decay_epoch, self.every)
        return self.initial_learning_rate * ops.power(self.factor, ops.cast(decays, "float32"))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "factor": self.factor,
            "every": self.every,
            "until": self.until,
        }
