"""SavedModels for TensorFlow Serving: versioned, atomic, with a `serving_default` signature.

    path = export_saved_model(model, "saved_models", "psp_fully")
    # -> saved_models/psp_fully/<next integer version>/ and saved_models/models.config

The signature `serving_default` takes `audio` float32 (batch, 10, 128) and `visual` float32
(batch, 10, 7, 7, 512) and returns:

- `segment_probabilities` float32 (batch, 10, 29): the model's softmax over the 29 classes.
- `segment_classes` int32 (batch, 10): argmax over the 29 classes (28 is background).
- `is_event` bool (batch, 10): `segment_classes != 28`.
- `video_class` int32 (batch,): the video's event category, 0..27: the category with the
  highest probability averaged over the 10 segments, background left out. It names the
  category even when no segment is predicted as an event (then `is_event` is all False).
- `class_names` string (batch, 29): the 29 class names, repeated for every video so that every
  output keeps the batch dimension (TF Serving's row format requires it). The same names are
  also written as the asset `assets/class_names.txt`, one per line.

The signature `predict_bytes` answers the same outputs for binary inputs: `audio_bytes` and
`visual_bytes`, string (batch,), each value one video's features as raw little-endian float32
(10x128 values = 5,120 bytes; 10x7x7x512 values = 1,003,520 bytes). Over REST they travel as
`{"b64": "<base64>"}` (TF Serving decodes it for string inputs; the `_bytes` suffix is its naming
convention for binary tensors). The graph checks every value's length and refuses non-finite
values (InvalidArgument naming the input; a 400 over REST); the finiteness test runs inside the
network's function (at batch 1 fused into the XLA code), ~0.2 ms less per video than a
`CheckNumerics` op before it.

With `jit_compile=True` (the default) both signatures run a batch of one video through an
XLA-compiled function (`serving_function`; class names and byte decoding stay outside: XLA has
no strings). It loads and runs with `tf.saved_model.load` and the local TF Serving stand-in
(docs/serving.md); TensorFlow Serving runs XLA on CPU only when started with
`--xla_cpu_compilation_enabled=true` (export with `jit_compile=False` otherwise). Such versions also
hold TF Serving's warm-up file (`assets.extra/tf_serving_warmup_requests`: one video of zeros per
signature), so TF Serving compiles the XLA path while it loads the version instead of on the first
user's request.

A version is written to a hidden temporary directory beside its final place and renamed into
place, so a watching server never sees a half-written version. `<export_dir>/models.config`
(TF Serving's `model_config_list` text format) is rewritten, again via a temporary file, to
list every model under `export_dir`.
"""

import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from ave_tf import ave
from ave_tf.atomic_files import write_text_atomic
from ave_tf.inputs import FEATURE_SHAPES
from ave_tf.model_files import check_model_name, saved_model_versions

SIGNATURE_NAME = "serving_default"
BYTES_SIGNATURE_NAME = "predict_bytes"
CLASS_NAMES_ASSET = "class_names.txt"
MODELS_CONFIG = "models.config"
DEFAULT_CONFIG_BASE_PATH = "/models"
"""Where `models.config` says the models live: the mount point of the `docker run` command."""

BYTES_SUFFIX = "_bytes"
"""`predict_bytes` names its inputs `<feature>_bytes` (`audio_bytes`, `visual_bytes`)."""


def feature_bytes(name: str) -> int:
    """Bytes of one video's `name` features as float32: 5,120 (audio), 1,003,520 (visual)."""
    return 4 * math.prod(FEATURE_SHAPES[name])


def _next_version(model_dir: pathlib.Path) -> int:
    taken = [int(c.name) for c in model_dir.iterdir() if c.name.isdigit()]
    return max(taken, default=0) + 1


def serving_inputs() -> list[tf.TensorSpec]:
    """The signature's inputs: ``audio`` (batch, 10, 128) and ``visual`` (batch, 10, 7, 7, 512)."""
    return [
        tf.TensorSpec((None, *shape), tf.float32, name=name)
        for name, shape in FEATURE_SHAPES.items()
    ]


def bytes_inputs() -> list[tf.TensorSpec]:
    """`predict_bytes`' inputs: ``audio_bytes`` and ``visual_bytes``, string (batch,)."""
    return [tf.TensorSpec((None,), tf.string, name=name + BYTES_SUFFIX) for name in FEATURE_SHAPES]


def decode_features(values: tf.Tensor, name: str) -> tf.Tensor:
    """(batch,) strings of raw little-endian float32 -> `name` features (batch, *shape).

    Raises (when run) InvalidArgumentError naming ``<name>_bytes`` when a value is not exactly
    `feature_bytes(name)` long (`predictors.graph_error_message` turns its text into one line).
    Non-finite values are refused by the signature (`serving_function`'s `refuse_non_finite`).
    """
    input_name = name + BYTES_SUFFIX
    shape = FEATURE_SHAPES[name]
    size = feature_bytes(name)
    lengths = tf.strings.length(values)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(lengths, size)),
        [
            f"Input '{input_name}': every value must hold {size} bytes "
            f"({'x'.join(map(str, shape))} little-endian float32); the values hold",
            lengths,
            "bytes",
        ],
        summarize=_SUMMARIZE,
    )
    with tf.control_dependencies([check]):
        flat = tf.io.decode_raw(values, tf.float32, little_endian=True)
    return tf.reshape(flat, [-1, *shape])


_SUMMARIZE = 8


def serving_function(
    model: keras.Model,
    jit_compile: bool = False,
    refuse_non_finite: Mapping[str, str] | None = None,
):
    """``serve(audio, visual) -> outputs``: the model's probabilities plus the decisions
    derived from them (see the module docstring). The SavedModel signatures wrap it, and
    ``ave_tf.predictors`` runs it on a ``.keras`` model, so both give the same outputs.

    With `jit_compile`, a batch of one video runs through an XLA-compiled `tf.function`
    (compiled once, on the first such call) and larger batches through the plain graph:
    XLA compiles once per batch size, and at batch 16 it was not faster (BENCHMARKS.md
    "Serving").

    `refuse_non_finite` maps features (``audio``, ``visual``) to the input name an error names:
    a NaN or infinity in them fails the call with InvalidArgumentError ``Input '<name>' has a
    non-finite value (NaN or Infinity)``. The test runs in the network's function (fused into
    the XLA code at batch 1), so it compiles separately from a `serving_function` without it."""
    class_names = tf.constant(ave.CLASS_NAMES)
    refuse_non_finite = dict(refuse_non_finite or {})

    def decide(audio, visual):
        inputs = {"audio": audio, "visual": visual}
        outputs = model(inputs, training=False)
        probabilities = tf.cast(outputs["segment_probabilities"], tf.float32)
        segment_classes = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        mean_over_segments = tf.reduce_mean(probabilities[..., : ave.BACKGROUND], axis=1)
        decisions = {
            "segment_probabilities": probabilities,
            "segment_classes": segment_classes,
            "is_event": tf.not_equal(segment_classes, ave.BACKGROUND),
            "video_class": tf.argmax(mean_over_segments, axis=-1, output_type=tf.int32),
        }
        finite = [tf.reduce_all(tf.math.is_finite(inputs[name])) for name in refuse_non_finite]
        return decisions, finite

    decide_one = tf.function(decide, jit_compile=True) if jit_compile else decide

    def serve(audio, visual):
        batch = tf.shape(audio)[0]
        if jit_compile:
            outputs, finite = tf.cond(
                tf.equal(batch, 1),
                lambda: decide_one(audio, visual),
                lambda: decide(audio, visual),
            )
        else:
            outputs, finite = decide(audio, visual)
        for input_name, all_finite in zip(refuse_non_finite.values(), finite, strict=True):
            tf.debugging.Assert(
                all_finite, [f"Input '{input_name}' has a non-finite value (NaN or Infinity)"]
            )
        return {**outputs, "class_names": tf.tile(class_names[tf.newaxis, :], [batch, 1])}

    return serve


def _write_saved_model(model: keras.Model, path: pathlib.Path, jit_compile: bool) -> None:
    serve = serving_function(model, jit_compile)
    serve_checked = serving_function(
        model, jit_compile, {name: name + BYTES_SUFFIX for name in FEATURE_SHAPES}
    )

    def serve_bytes(audio_bytes, visual_bytes):
        return serve_checked(
            decode_features(audio_bytes, "audio"), decode_features(visual_bytes, "visual")
        )

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE_NAME, fn=serve, input_signature=serving_inputs())
    archive.add_endpoint(name=BYTES_SIGNATURE_NAME, fn=serve_bytes, input_signature=bytes_inputs())
    archive.write_out(str(path), verbose=False)
    if jit_compile:
        _write_warmup_requests(path)
    write_class_names_asset(path)


WARMUP_REQUESTS = pathlib.Path("assets.extra", "tf_serving_warmup_requests")
"""TF Serving's warm-up file in a version: requests it replays before serving the version."""


def warmup_inputs() -> dict[str, dict[str, np.ndarray]]:
    """One video of zeros per signature, as `LoadedVersion.predict` takes it: running these
    compiles the XLA batch-1 path before a user's request waits for it."""
    zeros = {name: np.zeros((1, *shape), np.float32) for name, shape in FEATURE_SHAPES.items()}
    return {
        SIGNATURE_NAME: zeros,
        BYTES_SIGNATURE_NAME: {
            name + BYTES_SUFFIX: np.array([value[0].tobytes()], dtype=object)
            for name, value in zeros.items()
        },
    }


def _write_warmup_requests(path: pathlib.Path) -> None:
    """Writes `warmup_inputs()` as TF Serving's warm-up file (TFRecord of `PredictionLog`s)."""
    target = path / WARMUP_REQUESTS
    target.parent.mkdir()
    with tf.io.TFRecordWriter(str(target)) as writer:
        for signature, arrays in warmup_inputs().items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name=signature)
            )
            for name, value in arrays.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def read_warmup_requests(path: str | os.PathLike) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(signature, input arrays) of each request in the warm-up file of the version at `path`
    (none when it has no such file)."""
    source = pathlib.Path(path) / WARMUP_REQUESTS
    if not source.is_file():
        return []
    requests = []
    for record in tf.data.TFRecordDataset(str(source)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        requests.append((request.model_spec.signature_name, arrays))
    return requests


def models_config_text(
    export_dir: str | os.PathLike, config_base_path: str = DEFAULT_CONFIG_BASE_PATH
) -> str:
    """TF Serving's `model_config_list` listing every model directory under `export_dir`.

    A model directory is one holding at least one complete integer version. `base_path` of
    each entry is `<config_base_path>/<name>` (the path as the server sees it).
    """
    export_dir = pathlib.Path(export_dir)
    names = sorted(
        child.name
        for child in export_dir.iterdir()
        if child.is_dir() and not child.name.startswith(".") and saved_model_versions(child)
    )
    base = config_base_path.rstrip("/")
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{base}/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in names
    )
    return "model_config_list {\n" + entries + "}\n"


def write_models_config(
    export_dir: str | os.PathLike, config_base_path: str = DEFAULT_CONFIG_BASE_PATH
) -> pathlib.Path:
    """(Re)writes `<export_dir>/models.config` atomically; returns its path."""
    export_dir = pathlib.Path(export_dir)
    target = export_dir / MODELS_CONFIG
    text = models_config_text(export_dir, config_base_path)
    return write_text_atomic(target, text)


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    name: str,
    *,
    config_base_path: str = DEFAULT_CONFIG_BASE_PATH,
    jit_compile: bool = True,
) -> pathlib.Path:
    """Exports `model` as `<export_dir>/<name>/<next integer version>/` for TF Serving.

    Args:
        model: a Keras model with dict inputs `audio` (batch, 10, 128) and `visual`
            (batch, 10, 7, 7, 512) and a `segment_probabilities` (batch, 10, 29) output.
        export_dir: the model base directory (created if missing), e.g. `saved_models`.
        name: the model's name, e.g. `psp_fully`; also its directory under `export_dir`.
        config_base_path: the directory `models.config` names as the home of the models
            (default `/models`, where the `docker run -v ...:/models` command mounts them).
        jit_compile: run batches of one video XLA-compiled (see `serving_function`; TF
            Serving then needs `--xla_cpu_compilation_enabled=true` on CPU).

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: `name` is not a plain directory name, or the model lacks an input/output.
        OSError: `export_dir` cannot be written (nothing is left behind).
    """
    check_model_name(name)
    input_names = set(model.input) if isinstance(model.input, dict) else set()
    if input_names != {"audio", "visual"}:
        raise ValueError(
            f"model inputs must be a dict with keys audio, visual; got {sorted(input_names)}"
        )
    output_names = sorted(model.output) if isinstance(model.output, dict) else []
    if "segment_probabilities" not in output_names:
        raise ValueError(
            f"model outputs must be a dict with 'segment_probabilities'; got {output_names}"
        )
    return publish_version(
        export_dir,
        name,
        lambda path: _write_saved_model(model, path, jit_compile),
        config_base_path,
    )


def write_class_names_asset(path: pathlib.Path) -> None:
    """Writes the 29 class names as ``assets/class_names.txt`` of the SavedModel at ``path``."""
    assets = path / "assets"
    assets.mkdir(exist_ok=True)
    (assets / CLASS_NAMES_ASSET).write_text("\n".join(ave.CLASS_NAMES) + "\n")


def publish_version(
    export_dir: str | os.PathLike,
    name: str,
    write: Callable[[pathlib.Path], None],
    config_base_path: str = DEFAULT_CONFIG_BASE_PATH,
) -> pathlib.Path:
    """Writes a new version of model ``name`` atomically and lists it in ``models.config``.

    ``write(staging)`` writes the SavedModel into a hidden temporary directory beside its
    final place, which is then renamed to ``<export_dir>/<name>/<next integer version>``;
    on any failure the temporary directory is removed and nothing else changes.

    Returns:
        The path of the new version directory.
    """
    check_model_name(name)
    model_dir = pathlib.Path(export_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}-export-", dir=model_dir))
    try:
        write(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; servers may run as others
        while True:
            target = model_dir / str(_next_version(model_dir))
            try:
                os.rename(staging, target)
                break
            except OSError:
                if not target.exists():
                    raise
                # Another exporter took this version meanwhile: try the next one.
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_models_config(export_dir, config_base_path)
    return target
