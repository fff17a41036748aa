"""The one loader of trained PSP models: a model on disk -> a predict function.

    predict = load_predictor("saved_models/psp_fully")  # or .../psp_fully/3, or model.keras
    outputs = predict({"audio": audio, "visual": visual})  # (B, 10, 128), (B, 10, 7, 7, 512)
    outputs = predict_in_batches(predict, videos.inputs, batch_size=64)

A model on disk is one of: a ``.keras`` file, a SavedModel folder (``saved_model.pb``), or a
versioned export root (``<export_dir>/<name>`` of ``ave_tf.export``; its newest version).
Either way the outputs are those of the ``serving_default`` signature (``ave_tf.export``), as
NumPy arrays: ``segment_probabilities`` (B, 10, 29), ``segment_classes`` (B, 10),
``is_event`` (B, 10), ``video_class`` (B,) and ``class_names`` (B, 29). A ``.keras`` model is
run through the very function that signature wraps (``export.serving_function``). Inputs are
checked (shape, finite values; ``ave_tf.inputs``) before the model sees them.

``load_keras_model`` is the project's one way to reload a ``.keras`` file as a Keras model
(training's export, ``ave_tf.export_video`` and ``ave_tf.visualize`` use it): it registers
ave-tf's custom objects first. Importing this module loads neither TensorFlow nor Keras; its
loaders do.
"""

import pathlib
import re
from collections.abc import Callable, Mapping

import numpy as np

from ave_tf.errors import UsageError
from ave_tf.inputs import check_inputs
from ave_tf.model_files import KERAS_SUFFIX, ModelSourceError, resolve_model_path

SIGNATURE_INPUTS = ("audio", "visual")
VIDEO_SIGNATURE_INPUTS = ("frames", "waveform")
"""The inputs of the video-in model's signature (``ave_tf.export_video``)."""
SIGNATURE_OUTPUT = "segment_probabilities"

Predictor = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


def load_keras_model(path):
    """Loads a ``.keras`` file (registering ave_tf's custom objects first)."""
    import keras  # Keras (and TensorFlow): only when a model is loaded

    import ave_tf.models  # noqa: F401  (registers the custom objects; imports Keras)

    path = pathlib.Path(path)
    if path.suffix != KERAS_SUFFIX or not path.is_file():
        raise ModelSourceError(f"{path} is not a .keras file")
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelSourceError(f"{path}: cannot load the .keras model: {first_line}") from None


def load_saved_model(path):
    """``tf.saved_model.load(path)``; an unreadable folder is a ``ModelSourceError``."""
    import tensorflow as tf  # TensorFlow: only when a model is loaded

    try:
        return tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelSourceError(f"SavedModel {path}: cannot load it: {first_line}") from None


def serving_signature(loaded, path, accepted=(SIGNATURE_INPUTS,)):
    """The ``serving_default`` function of a loaded SavedModel, checked to take one of the
    ``accepted`` input sets (default: ``audio`` and ``visual``) and to output
    ``segment_probabilities``."""
    from ave_tf.export import SIGNATURE_NAME  # (export imports TensorFlow)

    signature = loaded.signatures.get(SIGNATURE_NAME)
    if signature is None:
        raise ModelSourceError(f"SavedModel {path} has no {SIGNATURE_NAME!r} signature")
    inputs = sorted(signature.structured_input_signature[1])
    if inputs not in [sorted(names) for names in accepted]:
        expected = " or ".join(str(list(names)) for names in accepted)
        raise ModelSourceError(
            f"SavedModel {path}: {SIGNATURE_NAME} takes {inputs}; expected {expected}"
        )
    if SIGNATURE_OUTPUT not in signature.structured_outputs:
        raise ModelSourceError(
            f"SavedModel {path}: {SIGNATURE_NAME} has no {SIGNATURE_OUTPUT!r} output; "
            f"has {sorted(signature.structured_outputs)}"
        )
    return signature


_ASSERTION = "assertion failed: "
_CHECK_NUMERICS = " : Tensor had "
_FUNCTION_NODE = re.compile(r"^(\{\{function_node [^}]*\}\}\s*)+")
_FRAME = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")


def graph_error_message(error) -> str:
    """One line for a failed graph op (a ``tf.errors.OpError``) without TensorFlow's frame.

    The signatures' own checks (``tf.debugging.assert_*``, ``check_numerics``) name the input
    already: ``"assertion failed: [<message>] [<lengths>] [bytes]"`` becomes ``"<message>
    <lengths> bytes"``. Any other op's words are followed by its node name, which names the step:
    e.g. ``... (node decode_frames/DecodeImage)``.
    """
    for line in error.message.splitlines():
        line = _FUNCTION_NODE.sub("", line.strip())
        if _ASSERTION in line:
            parts = line.split(_ASSERTION, 1)[1].strip().removeprefix("[").removesuffix("]")
            return " ".join(part.replace("\\'", "'") for part in parts.split("] ["))
        if _CHECK_NUMERICS in line:
            return line.split(_CHECK_NUMERICS, 1)[0]
    node = re.search(r"\{\{node ([^}]+)\}\}", error.message)
    words = [
        line.strip()
        for line in error.message.splitlines()
        if line.strip() and not line.strip().startswith(_FRAME)
    ]
    text = " ".join(words) or type(error).__name__
    return f"{text} (node {node.group(1)})" if node else text


def signature_inputs(path) -> tuple[str, ...]:
    """The sorted input names of the ``serving_default`` of the model at ``path``, read from the
    SavedModel's graph file without loading it (a ``.keras`` model: ``audio``, ``visual``)."""
    path = resolve_model_path(path)
    if path.suffix == KERAS_SUFFIX:
        return tuple(sorted(SIGNATURE_INPUTS))
    from tensorflow.core.protobuf import saved_model_pb2  # TensorFlow: after the path check

    from ave_tf.export import SIGNATURE_NAME  # (export imports TensorFlow)

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        signature_def = proto.meta_graphs[0].signature_def[SIGNATURE_NAME]
    except (OSError, IndexError, KeyError, ValueError) as error:
        raise ModelSourceError(f"SavedModel {path}: cannot read its signature: {error}") from None
    return tuple(sorted(signature_def.inputs))


def load_predictor(path) -> Predictor:
    """A function ``inputs -> serving outputs`` for the model at ``path``: a features model
    takes ``{"audio", "visual"}`` arrays, the video-in model (``ave_tf.export_video``)
    ``{"frames", "waveform"}`` byte-string arrays; an input its graph refuses is a
    ``UsageError`` naming it."""
    path = resolve_model_path(path)  # before TensorFlow loads: a wrong path fails fast
    import tensorflow as tf  # TensorFlow: after the path check

    from ave_tf.export import serving_function, serving_inputs  # (imports TensorFlow)

    if path.suffix == KERAS_SUFFIX and path.is_file():
        serve = tf.function(serving_function(load_keras_model(path)), serving_inputs())
    else:
        loaded = load_saved_model(path)
        signature = serving_signature(loaded, path, (SIGNATURE_INPUTS, VIDEO_SIGNATURE_INPUTS))
        if sorted(signature.structured_input_signature[1]) == sorted(VIDEO_SIGNATURE_INPUTS):
            return _video_predictor(signature, loaded)

        def serve(audio, visual, _loaded=loaded):  # _loaded keeps the variables alive
            return signature(audio=audio, visual=visual)

    def predict(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        audio, visual = check_inputs(inputs["audio"], inputs["visual"])
        outputs = serve(tf.constant(audio), tf.constant(visual))
        return {name: value.numpy() for name, value in outputs.items()}

    return predict


def _video_predictor(signature, loaded) -> Predictor:
    import tensorflow as tf  # (already loaded with the model)

    def predict(inputs: Mapping[str, np.ndarray], _loaded=loaded) -> dict[str, np.ndarray]:
        arrays = {name: tf.constant(inputs[name]) for name in VIDEO_SIGNATURE_INPUTS}
        try:
            outputs = signature(**arrays)
        except tf.errors.InvalidArgumentError as error:
            raise UsageError(graph_error_message(error)) from None
        return {name: value.numpy() for name, value in outputs.items()}

    return predict


def predict_in_batches(
    predict: Predictor, inputs: Mapping[str, np.ndarray], batch_size: int
) -> dict[str, np.ndarray]:
    """``predict`` over consecutive batches of ``inputs`` (``batch_size`` videos each), its
    outputs concatenated along the batch axis."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1; got {batch_size}")
    count = len(next(iter(inputs.values())))
    parts = [
        predict({name: value[start : start + batch_size] for name, value in inputs.items()})
        for start in range(0, max(count, 1), batch_size)  # no videos: predict refuses them
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
