"""Dropout randomness that is a function of (seed, epoch), so a resumed run matches.

`keras.callbacks.BackupAndRestore` saves weights and optimizer state but not the state of
the `SeedGenerator`s behind `Dropout`; a resumed run would draw other dropout masks than an
uninterrupted one. `EpochSeeds` sets every seed generator of the model at the start of each
epoch to ``[seed * 1000 + generator index, epoch]``, which makes the masks of epoch e the same
however the run got there.
"""

import keras
import numpy as np


def seed_generator_states(model):
    """The state variables of all SeedGenerators in `model` (stable order)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class EpochSeeds(keras.callbacks.Callback):
    """Re-seeds the model's SeedGenerators at every epoch start.

    Args:
        seed: the run's seed.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        for index, state in enumerate(seed_generator_states(self.model)):
            value = np.array([self.seed * 1000 + index, epoch], dtype=state.dtype)
            state.assign(value)
