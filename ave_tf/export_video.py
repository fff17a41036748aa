"""Exports the video-in SavedModel: a decoded clip in, the PSP timeline outputs out, one graph.

    python -m ave_tf.export_video --model=saved_models/psp_fully \\
        --vggish_checkpoint=vggish_model.ckpt \\
        --vgg19_weights=vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
        --export_dir=saved_models
    # (prints: exported saved_models/psp_video/1 (saved_models/models.config lists it))

``--model`` is a trained PSP model as ``ave_tf.predictors`` loads it: a ``.keras`` file, a
SavedModel folder or a versioned export root (its newest version). The new version
``<export_dir>/<name>/<next integer>/`` is written atomically and ``models.config`` lists it,
as ``ave_tf.export`` does for the features model.

Its signature ``serving_default`` takes

- ``frames``: string (batch, 160), the recipe's 16 sampled frames of each of the 10 seconds as
  JPEG (or PNG) bytes, any size (``ave_tf.extraction.clip_encoding`` makes them from a video);
- ``waveform``: string (batch,), the 10 s of audio as 16 kHz mono int16 little-endian PCM,
  320,000 bytes, second i at samples [16000 i, 16000 (i + 1));

runs the VGGish front end, VGGish, VGG19 (``ave_tf.extraction.graph``) and the PSP model, and
returns the outputs of the features model's ``serving_default`` (``ave_tf.export``):
``segment_probabilities``, ``segment_classes``, ``is_event``, ``video_class``, ``class_names``.
Over REST the inputs travel as ``{"b64": ...}`` values (TF Serving decodes b64 objects for every
string input, whatever its name). Bad input: one ``error:`` line, exit 2.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import os
import pathlib

from absl import flags

from ave_tf import extract, model_files, predictors
from ave_tf.errors import UsageError
from ave_tf.extraction.clip_encoding import FRAMES_PER_VIDEO

FLAGS = flags.FLAGS
VIDEO_MODEL_NAME = "psp_video"


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string(
        "model", None, "The trained PSP model: a .keras file, a SavedModel or an export root."
    )
    flags.DEFINE_string("export_dir", "saved_models", "The model base directory to write into.")
    flags.DEFINE_string("name", VIDEO_MODEL_NAME, "The model's name (its folder under it).")
    flags.DEFINE_string(
        "config_base_path",
        None,
        "Where models.config says the models live, the server's view of --export_dir "
        "(default /models, where the docker command of docs/serving.md mounts it).",
    )
    extract.define_weight_flags()  # --vggish_checkpoint, --vgg19_weights


def video_inputs() -> list:
    """The signature's inputs: ``frames`` string (None, 160), ``waveform`` string (None,)."""
    import tensorflow as tf  # TensorFlow: only when a model is exported

    return [
        tf.TensorSpec((None, FRAMES_PER_VIDEO), tf.string, name="frames"),
        tf.TensorSpec((None,), tf.string, name="waveform"),
    ]


def psp_serving(path: str | os.PathLike):
    """The trained PSP model at ``path`` as ``(serve, resource)``: ``serve(audio, visual)``
    returns the features model's serving outputs; ``resource`` owns its variables (the
    SavedModel being written must track it)."""
    from ave_tf import export  # TensorFlow: loaded with the model

    path = model_files.resolve_model_path(path)
    if path.suffix == model_files.KERAS_SUFFIX:
        model = predictors.load_keras_model(path)
        return export.serving_function(model), model
    loaded = predictors.load_saved_model(path)
    signature = predictors.serving_signature(loaded, path)
    return (lambda audio, visual: signature(audio=audio, visual=visual)), loaded


def export_video_model(
    psp,
    audio_model,
    visual_model,
    export_dir: str | os.PathLike,
    name: str = VIDEO_MODEL_NAME,
    *,
    config_base_path: str | None = None,
) -> pathlib.Path:
    """Writes ``<export_dir>/<name>/<next version>/``, the video-in SavedModel.

    Args:
        psp: ``(serve, resource)`` of `psp_serving`.
        audio_model: VGGish (``ave_tf.extraction.vggish``), (n, 96, 64) -> (n, 128).
        visual_model: VGG19 to ``block5_pool`` (``ave_tf.extraction.vgg19``).
        export_dir: the model base directory (created if missing).
        name: the model's folder name.
        config_base_path: as in ``ave_tf.export.export_saved_model``.

    Returns:
        The new version directory.
    """
    import keras  # Keras and TensorFlow: after the flags are checked

    from ave_tf import export  # (imports TensorFlow)
    from ave_tf.extraction.graph import clip_features  # (imports TensorFlow)

    serve, resource = psp

    def serve_clip(frames, waveform):
        audio, visual = clip_features(frames, waveform, audio_model, visual_model)
        return serve(audio, visual)

    def write(path: pathlib.Path) -> None:
        archive = keras.export.ExportArchive()
        for tracked in (audio_model, visual_model, resource):
            archive.track(tracked)
        archive.add_endpoint(export.SIGNATURE_NAME, serve_clip, input_signature=video_inputs())
        archive.write_out(str(path), verbose=False)
        export.write_class_names_asset(path)

    base = export.DEFAULT_CONFIG_BASE_PATH if config_base_path is None else config_base_path
    return export.publish_version(export_dir, name, write, base)


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.model:
        raise UsageError("--model is required: a .keras file, a SavedModel or an export root")
    try:
        model_files.check_model_name(FLAGS.name)
    except ValueError as error:
        raise UsageError(f"--name: {error}") from None
    model_files.resolve_model_path(FLAGS.model)  # a wrong path fails before the weights load
    extractor = extract.feature_extractor()
    psp = psp_serving(FLAGS.model)
    path = export_video_model(
        psp,
        extractor.audio_model,
        extractor.visual_model,
        FLAGS.export_dir,
        FLAGS.name,
        config_base_path=FLAGS.config_base_path,
    )
    print(f"exported {path} ({pathlib.Path(FLAGS.export_dir) / 'models.config'} lists it)")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
