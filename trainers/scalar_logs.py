"""TensorBoard scalar logs without the `tensorboard` package.

`keras.callbacks.TensorBoard` needs the `tensorboard` pip package (`tf.summary.scalar` is
implemented there), which requirements.txt does not pin. This callback writes the same event
files with TensorFlow's own `tf.summary.write` and the scalars plugin's metadata, so
`tensorboard --logdir <model_dir>/logs` shows them wherever TensorBoard is installed.
"""

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _scalar_metadata():
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


class ScalarLogs(keras.callbacks.Callback):
    """Writes every epoch's logs as scalars: `train/<name>` and `validation/<name>`.

    Args:
        log_dir: event-file folder (created when missing).
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writer = None
        self._metadata = _scalar_metadata()

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default(step=epoch):
            for key, value in (logs or {}).items():
                tag = f"validation/{key[4:]}" if key.startswith("val_") else f"train/{key}"
                tf.summary.write(tag, tf.constant(float(value)), metadata=self._metadata)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
