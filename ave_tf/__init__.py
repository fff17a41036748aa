"""ave-tf: Positive Sample Propagation (Zhou et al., CVPR 2021) in Keras 3 / TensorFlow.

Importing the package itself loads nothing heavy (``tfds_ave`` and the command-line programs
import it without Keras or TensorFlow).

Loading a trained model: ``ave_tf.predictors.load_keras_model(path)`` reloads a ``.keras`` file
(it registers ave-tf's custom layers, losses and metrics first), and
``ave_tf.predictors.load_predictor(path)`` turns a ``.keras`` file, a SavedModel or an export
root into a predict function. ``keras.models.load_model`` works too, but only after
``import ave_tf.models`` (which imports Keras and registers the custom objects): Keras 3 looks a
saved object up among the registered ones and imports the module its config names only for
Keras' own packages, so ``import ave_tf`` alone cannot register them without importing Keras.
"""

__version__ = "0.1.0"
