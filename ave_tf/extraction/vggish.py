"""VGGish (Hershey et al., ICASSP 2017) in Keras 3, loaded from the official TF1 checkpoint.

The network of tensorflow/models research/audioset/vggish as of 2018 (``vggish_slim.py``, the
version the AVE features were made with) up to its ``vggish/embedding`` output: 3x3
convolutions (stride 1, SAME, ReLU) and 2x2 max pools (stride 2, SAME),

    (96, 64, 1) conv1 64, pool1, conv2 128, pool2, conv3_1 256, conv3_2 256, pool3,
    conv4_1 512, conv4_2 512, pool4 -> (6, 4, 512), flatten (NHWC order) -> 12288,
    fc1_1 4096, fc1_2 4096, fc2 128, each fully connected layer with a ReLU.

The ReLU on fc2 is the 2018 recipe: every layer of that ``vggish_slim.py``, fc2 included, sits
inside ``slim.arg_scope(..., activation_fn=tf.nn.relu)``; the ``activation_fn=None`` on fc2 (a
"pre-activation" embedding) came to tensorflow/models later. The released AVE audio features
agree (no negative value, about 65 % exact zeros). The AVE audio features are these fc2 values:
no PCA, no 8-bit quantisation. Keras keeps the checkpoint's layouts (conv kernels HWIO, dense
kernels (in, out), flatten over height, width, channels), so the official values load without
permutation.
"""

import os

import keras
import tensorflow as tf

from ave_tf.errors import UsageError
from ave_tf.extraction.log_mel import EXAMPLE_FRAMES, MEL_BANDS

EMBEDDING_SIZE = 128
CONVOLUTION_BLOCKS = (
    (("conv1",), 64),
    (("conv2",), 128),
    (("conv3_1", "conv3_2"), 256),
    (("conv4_1", "conv4_2"), 512),
)
"""(convolution layer names, filters) of each block; a 2x2 max pool ends each block."""
FULLY_CONNECTED = (("fc1_1", 4096), ("fc1_2", 4096), ("fc2", EMBEDDING_SIZE))
"""(name, units) of the fully connected layers, each followed by a ReLU; fc2 is the embedding."""
CHECKPOINT_SCOPES = {
    "conv1": "vggish/conv1",
    "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1",
    "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1",
    "conv4_2": "vggish/conv4/conv4_2",
    "fc1_1": "vggish/fc1/fc1_1",
    "fc1_2": "vggish/fc1/fc1_2",
    "fc2": "vggish/fc2",
}
"""Keras layer name -> variable scope in ``vggish_model.ckpt`` (``weights`` and ``biases``)."""


class VGGishCheckpointError(UsageError):
    """The VGGish checkpoint cannot be used; the message names the file and what is wrong.

    Args:
        path: the checkpoint given by the user.
        reason: what is wrong, naming the variable(s) at fault where there are any.
    """

    def __init__(self, path, reason: str):
        super().__init__(f"VGGish checkpoint {os.fspath(path)}: {reason}")
        self.path = path
        self.reason = reason


def vggish_model() -> keras.Model:
    """VGGish with random (untrained) weights; `load_vggish_checkpoint` fills them.

    Returns:
        A `keras.Model` named ``vggish``: (batch, 96, 64) log-mel examples (a (batch, 96, 64, 1)
        input works too) -> (batch, 128) embeddings, the 2018 ``vggish/embedding`` values
        (after fc2's ReLU: non-negative).
    """
    log_mel = keras.Input((EXAMPLE_FRAMES, MEL_BANDS), name="log_mel")
    x = keras.layers.Reshape((EXAMPLE_FRAMES, MEL_BANDS, 1), name="add_channel")(log_mel)
    for block, (names, filters) in enumerate(CONVOLUTION_BLOCKS, start=1):
        for name in names:
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for name, units in FULLY_CONNECTED:
        x = keras.layers.Dense(units, activation="relu", name=name)(x)
    return keras.Model(log_mel, x, name="vggish")


def _first_line(error: Exception) -> str:
    message = error.message if isinstance(error, tf.errors.OpError) else str(error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def load_vggish_checkpoint(model: keras.Model, path) -> None:
    """Reads the official ``vggish_model.ckpt`` (TF1 ``Saver``, V1 or V2 format) into ``model``.

    Every variable is checked and read before any is assigned: on error the model is unchanged.

    Args:
        model: a model from `vggish_model`.
        path: the checkpoint file (V1) or prefix (V2).

    Raises:
        VGGishCheckpointError: the file is missing, unreadable or truncated; it holds no
            ``vggish/`` variables; or VGGish variables are missing or mis-shaped (all named).
    """
    path_text = os.fspath(path)
    if not (tf.io.gfile.exists(path_text) or tf.io.gfile.exists(path_text + ".index")):
        raise VGGishCheckpointError(path, "no such file")
    try:
        reader = tf.train.load_checkpoint(path_text)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        reason = "not a readable TensorFlow checkpoint (another format, or truncated)"
        raise VGGishCheckpointError(path, f"{reason}: {_first_line(error)}") from error
    if not any(name.startswith("vggish/") for name in shapes):
        found = ", ".join(sorted(shapes)[:3]) or "no variables"
        raise VGGishCheckpointError(
            path, f"not a VGGish checkpoint: no vggish/ variables (found {found})"
        )

    targets = {}  # checkpoint name -> Keras variable
    for layer_name, scope in CHECKPOINT_SCOPES.items():
        layer = model.get_layer(layer_name)
        targets[f"{scope}/weights"] = layer.kernel
        targets[f"{scope}/biases"] = layer.bias
    missing = [name for name in targets if name not in shapes]
    misshaped = [
        f"{name} has shape {tuple(shapes[name])}, VGGish needs {tuple(variable.shape)}"
        for name, variable in targets.items()
        if name in shapes and tuple(shapes[name]) != tuple(variable.shape)
    ]
    if missing or misshaped:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + misshaped
        raise VGGishCheckpointError(path, "; ".join(problems))

    values = {}
    for name in targets:
        try:
            values[name] = reader.get_tensor(name)
        except tf.errors.OpError as error:
            raise VGGishCheckpointError(
                path, f"cannot read {name} (truncated?): {_first_line(error)}"
            ) from error
    for name, variable in targets.items():
        variable.assign(values[name])


def vggish_from_checkpoint(path) -> keras.Model:
    """`vggish_model` with the weights of the official checkpoint at ``path``."""
    model = vggish_model()
    load_vggish_checkpoint(model, path)
    return model
