"""The two PSP networks and what they are trained with.

Importing this package registers every custom layer, loss and metric of ave-tf with Keras, so
``keras.models.load_model`` reloads a ``.keras`` file without ``custom_objects``.
"""

from ave_tf import layers, losses, metrics  # noqa: F401  (registration)
from ave_tf.config import FullySupervisedConfig, PSPConfig, WeaklySupervisedConfig
from ave_tf.models.fully_supervised import fully_supervised_model
from ave_tf.models.network import INTERNALS, expose_internals
from ave_tf.models.objectives import training_objectives, training_view
from ave_tf.models.weakly_supervised import weakly_supervised_model


def model_for_config(config: PSPConfig, with_internals: bool = False):
    """The fully or weakly supervised network, whichever ``config`` is for."""
    if isinstance(config, FullySupervisedConfig):
        return fully_supervised_model(config, with_internals)
    if isinstance(config, WeaklySupervisedConfig):
        return weakly_supervised_model(config, with_internals)
    raise TypeError(
        f"config must be a Fully- or WeaklySupervisedConfig; got {type(config).__name__}"
    )


__all__ = [
    "INTERNALS",
    "expose_internals",
    "fully_supervised_model",
    "model_for_config",
    "training_objectives",
    "training_view",
    "weakly_supervised_model",
]
