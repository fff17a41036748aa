"""The two PSP networks, the AVEL baseline in both settings, and what they are trained with.

Importing this package registers every custom layer, loss and metric of ave-tf with Keras, so
``keras.models.load_model`` reloads a ``.keras`` file without ``custom_objects``.
"""

from ave_tf import layers, losses, metrics  # noqa: F401  (registration)
from ave_tf.config import (
    AVELConfig,
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    FullySupervisedConfig,
    PSPConfig,
    WeaklySupervisedConfig,
)
from ave_tf.models.avel import avel_fully_supervised_model, avel_weakly_supervised_model
from ave_tf.models.fully_supervised import fully_supervised_model
from ave_tf.models.network import INTERNALS, expose_internals
from ave_tf.models.objectives import training_objectives, training_view
from ave_tf.models.weakly_supervised import weakly_supervised_model

_BUILDERS = {
    FullySupervisedConfig: fully_supervised_model,
    WeaklySupervisedConfig: weakly_supervised_model,
    AVELFullySupervisedConfig: avel_fully_supervised_model,
    AVELWeaklySupervisedConfig: avel_weakly_supervised_model,
}


def model_for_config(config: PSPConfig | AVELConfig, with_internals: bool = False):
    """The PSP or AVEL network, fully or weakly supervised, whichever ``config`` is for."""
    for config_class, build in _BUILDERS.items():
        if isinstance(config, config_class):
            return build(config, with_internals)
    raise TypeError(
        "config must be a (AVEL)FullySupervisedConfig or (AVEL)WeaklySupervisedConfig; "
        f"got {type(config).__name__}"
    )


__all__ = [
    "INTERNALS",
    "avel_fully_supervised_model",
    "avel_weakly_supervised_model",
    "expose_internals",
    "fully_supervised_model",
    "model_for_config",
    "training_objectives",
    "training_view",
    "weakly_supervised_model",
]
