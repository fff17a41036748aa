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

A version is written to a hidden temporary directory beside its final place and renamed into
place, so a watching server never sees a half-written version. `<export_dir>/models.config`
(TF Serving's `model_config_list` text format) is rewritten, again via a temporary file, to
list every model under `export_dir`.
"""

import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

import keras
import tensorflow as tf

from ave_tf import ave
from ave_tf.atomic_files import write_text_atomic
from ave_tf.predictors import saved_model_versions

SIGNATURE_NAME = "serving_default"
CLASS_NAMES_ASSET = "class_names.txt"
MODELS_CONFIG = "models.config"
DEFAULT_CONFIG_BASE_PATH = "/models"
"""Where `models.config` says the models live: the mount point of the `docker run` command."""


def _next_version(model_dir: pathlib.Path) -> int:
    taken = [int(c.name) for c in model_dir.iterdir() if c.name.isdigit()]
    return max(taken, default=0) + 1


def serving_inputs() -> list[tf.TensorSpec]:
    """The signature's inputs: ``audio`` (batch, 10, 128) and ``visual`` (batch, 10, 7, 7, 512)."""
    return [
        tf.TensorSpec((None, ave.NUM_SEGMENTS, ave.AUDIO_DIM), tf.float32, name="audio"),
        tf.TensorSpec((None, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), tf.float32, name="visual"),
    ]


def serving_function(model: keras.Model):
    """``serve(audio, visual) -> outputs``: the model's probabilities plus the decisions
    derived from them (see the module docstring). The SavedModel signature wraps it, and
    ``ave_tf.predictors`` runs it on a ``.keras`` model, so both give the same outputs."""
    class_names = tf.constant(ave.CLASS_NAMES)

    def serve(audio, visual):
        outputs = model({"audio": audio, "visual": visual}, training=False)
        probabilities = tf.cast(outputs["segment_probabilities"], tf.float32)
        segment_classes = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        mean_over_segments = tf.reduce_mean(probabilities[..., : ave.BACKGROUND], axis=1)
        video_class = tf.argmax(mean_over_segments, axis=-1, output_type=tf.int32)
        batch = tf.shape(audio)[0]
        return {
            "segment_probabilities": probabilities,
            "segment_classes": segment_classes,
            "is_event": tf.not_equal(segment_classes, ave.BACKGROUND),
            "video_class": video_class,
            "class_names": tf.tile(class_names[tf.newaxis, :], [batch, 1]),
        }

    return serve


def _write_saved_model(model: keras.Model, path: pathlib.Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE_NAME, fn=serving_function(model), input_signature=serving_inputs()
    )
    archive.write_out(str(path), verbose=False)
    write_class_names_asset(path)


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
) -> pathlib.Path:
    """Exports `model` as `<export_dir>/<name>/<next integer version>/` for TF Serving.

    Args:
        model: a Keras model with dict inputs `audio` (batch, 10, 128) and `visual`
            (batch, 10, 7, 7, 512) and a `segment_probabilities` (batch, 10, 29) output.
        export_dir: the model base directory (created if missing), e.g. `saved_models`.
        name: the model's name, e.g. `psp_fully`; also its directory under `export_dir`.
        config_base_path: the directory `models.config` names as the home of the models
            (default `/models`, where the `docker run -v ...:/models` command mounts them).

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
        export_dir, name, lambda path: _write_saved_model(model, path), config_base_path
    )


def check_model_name(name: str) -> None:
    """Raises ValueError unless ``name`` is a plain, non-numeric directory name."""
    if not name or name.startswith(".") or "/" in name or os.sep in name or name.isdigit():
        raise ValueError(f"model name must be a plain, non-numeric directory name; got {name!r}")


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
