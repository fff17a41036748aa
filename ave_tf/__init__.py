"""ave-tf: Positive Sample Propagation (Zhou et al., CVPR 2021) in Keras 3 / TensorFlow.

Importing the package registers every custom layer, loss and metric, so ``.keras`` files
reload with ``keras.models.load_model`` and no ``custom_objects``.
"""

from ave_tf import layers, losses, metrics, models  # noqa: F401

__version__ = "0.1.0"
