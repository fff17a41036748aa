"""ave-tf: Positive Sample Propagation (Zhou et al., CVPR 2021) in Keras 3 / TensorFlow.

Importing the package itself loads nothing heavy (``tfds_ave`` and the command-line programs
import it without Keras). ``import ave_tf.models`` registers every custom layer, loss and
metric, so ``.keras`` files reload with ``keras.models.load_model`` and no ``custom_objects``.
"""

__version__ = "0.1.0"
