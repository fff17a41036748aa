"""VGG19 visual features of a clip, as the AVE release computed them.

Of the ``total_frames`` frames of the 10 s span, ``frame_interval = total_frames // 10`` frames
make one second; second ``s`` samples the 16 frames ``int(s * frame_interval + (i / 16) *
frame_interval)``, ``i = 0..15``. Each sampled frame (RGB, 224x224) goes through Keras'
``vgg19.preprocess_input`` (caffe mode: RGB -> BGR, ImageNet channel means subtracted) and
VGG19 up to ``block5_pool``, (7, 7, 512); the 16 frames of a second are averaged.

Weights are the user's file: the one Keras' ``VGG19`` downloads, without the classifier
(``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``) or with it
(``vgg19_weights_tf_dim_ordering_tf_kernels.h5``), or ``"imagenet"`` to let Keras fetch it.
"""

import os
import pathlib

import numpy as np

from ave_tf.errors import UsageError

SEGMENTS = 10
FRAMES_PER_SEGMENT = 16
FEATURE_SHAPE = (7, 7, 512)
NOTOP_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
FULL_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels.h5"


class VGG19WeightsError(UsageError):
    """A VGG19 weights file that cannot be used; the message names the file and layer."""


def sample_frame_indices(total_frames: int) -> np.ndarray:
    """The recipe's frame indices: int (10, 16), row ``s`` the 16 frames of second ``s``.

    Raises:
        ValueError: ``total_frames`` < 10 (a second would have no frame).
    """
    if total_frames < SEGMENTS:
        raise ValueError(f"total_frames must be >= {SEGMENTS}; got {total_frames}")
    frame_interval = total_frames // SEGMENTS
    return np.array(
        [
            [
                int(s * frame_interval + (i / FRAMES_PER_SEGMENT) * frame_interval)
                for i in range(FRAMES_PER_SEGMENT)
            ]
            for s in range(SEGMENTS)
        ]
    )


def preprocess_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, 224, 224, 3) -> float32 VGG19 input (caffe mode: BGR, mean subtracted)."""
    import keras  # Keras: only when frames are preprocessed or a model built

    return keras.applications.vgg19.preprocess_input(frames.astype(np.float32))


def vgg19_pool5_model(weights: str | os.PathLike | None) -> "keras.Model":  # noqa: F821
    """Keras VGG19 without its classifier: (batch, 224, 224, 3) -> (batch, 7, 7, 512).

    Args:
        weights: a Keras VGG19 weights file (with or without the classifier), ``"imagenet"``
            (Keras downloads it: needs a network) or None (random, for tests).

    Raises:
        VGG19WeightsError: the file is missing, not HDF5, or lacks a layer or has a mis-shaped
            one (the message names the file and the layer).
    """
    import keras  # Keras: only when frames are preprocessed or a model built

    if weights == "imagenet":
        return keras.applications.VGG19(weights="imagenet", include_top=False)
    model = keras.applications.VGG19(weights=None, include_top=False)
    if weights is not None:
        load_vgg19_weights(model, weights)
    return model


def load_vgg19_weights(model, path: str | os.PathLike) -> None:
    """Sets ``model``'s convolutions from a Keras (legacy HDF5) VGG19 weights file.

    The file holds one group per layer whose ``weight_names`` attribute lists its datasets
    (kernel, bias); the classifier layers of the full file are not used.
    """
    import h5py  # h5py: only when a weights file is read

    path = pathlib.Path(path)
    if not path.is_file():
        raise VGG19WeightsError(f"{path}: no such VGG19 weights file")
    try:
        with h5py.File(path, "r") as file:
            root = file["model_weights"] if "layer_names" not in file.attrs else file
            for layer in model.layers:
                if layer.weights:
                    layer.set_weights(_layer_values(root, layer, path))
    except OSError as error:
        raise VGG19WeightsError(f"{path}: not a readable HDF5 weights file ({error})") from None
    except KeyError:
        raise VGG19WeightsError(
            f"{path}: not a Keras VGG19 weights file (no 'layer_names'); expected "
            f"{NOTOP_WEIGHTS_FILE} or {FULL_WEIGHTS_FILE}"
        ) from None


def _layer_values(root, layer, path) -> list[np.ndarray]:
    if layer.name not in root:
        raise VGG19WeightsError(f"{path}: layer {layer.name!r} is missing")
    group = root[layer.name]
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    values = [np.asarray(group[name]) for name in names]
    expected = [tuple(weight.shape) for weight in layer.weights]
    if [value.shape for value in values] != expected:
        found = [value.shape for value in values]
        raise VGG19WeightsError(
            f"{path}: layer {layer.name!r} has weights of shapes {found}; expected {expected}"
        )
    return values


def visual_features(frames: np.ndarray, model, batch_size: int = 32) -> np.ndarray:
    """VGG19 features of a clip's span: float32 (10, 7, 7, 512).

    Args:
        frames: uint8 (total_frames, 224, 224, 3) RGB, every frame of the 10 s span.
        model: `vgg19_pool5_model` (or any model (batch, 224, 224, 3) -> (batch, 7, 7, 512)).
        batch_size: frames per model call.

    Returns:
        Per second, the mean of ``block5_pool`` over its 16 sampled frames. Each distinct
        frame goes through VGG19 once, even when short clips sample it twice.
    """
    indices = sample_frame_indices(len(frames))
    distinct, where = np.unique(indices, return_inverse=True)
    pooled = []
    for first in range(0, len(distinct), batch_size):
        batch = preprocess_frames(frames[distinct[first : first + batch_size]])
        pooled.append(np.asarray(model.predict_on_batch(batch)))
    pooled = np.concatenate(pooled)
    per_frame = pooled[where.reshape(-1)].reshape(SEGMENTS, FRAMES_PER_SEGMENT, *FEATURE_SHAPE)
    return per_frame.mean(axis=1, dtype=np.float32)
