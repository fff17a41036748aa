"""Predicts event timelines for videos through TF Serving's REST API or in-process.

    python -m ave_tf.predict --server http://127.0.0.1:8501 --model psp_fully videos.npz
    python -m ave_tf.predict --local saved_models/psp_fully --tfds tfds_ave/synthetic:test[:8]
    # video_0001: Church bell from 0 s to 6 s (confidence 0.91)

FILE is an `.npz` or `.h5` holding `audio` (N, 10, 128) and `visual` (N, 10, 7, 7, 512) (a
single video may drop the leading N) and optionally `video_id` (N,) strings. `--tfds
tfds_ave/<config>:<split>` reads a split of the project's TFDS dataset instead, `--video
clip.mp4 --vggish_checkpoint=CKPT --vgg19_weights=H5` extracts one video's features in-process
(see `ave_tf.extract`). `--json_output`
writes every video's classes, events and video category as JSON.
"""

import os
import pathlib
import sys

import numpy as np
from absl import app, flags

from ave_tf.atomic_files import write_json_atomic
from ave_tf.errors import UsageError
from ave_tf.events import format_timeline, segment_events
from ave_tf.serving import rest_api
from ave_tf.serving.client import Prediction, ServingClient, ServingError, check_inputs

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string("server", None, "TF Serving REST base URL, e.g. http://127.0.0.1:8501.")
    flags.DEFINE_string("model", "psp_fully", "Model name on the server.")
    flags.DEFINE_integer("version", None, "Pin a model version on the server.")
    flags.DEFINE_string("label", None, "Pin a model version label on the server.")
    flags.DEFINE_string("local", None, "Predict in-process with this model directory instead.")
    flags.DEFINE_string("tfds", None, "Read videos from tfds_ave/<config>:<split> instead of FILE.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory for --tfds.")
    flags.DEFINE_enum("request_format", "columnar", list(rest_api.FORMATS), "REST body format.")
    flags.DEFINE_bool("gzip", False, "gzip-compress request bodies.")
    flags.DEFINE_integer("batch_size", 16, "Videos per request.", lower_bound=1)
    flags.DEFINE_float("timeout", 60.0, "Seconds per HTTP attempt.")
    flags.DEFINE_string("json_output", None, "Write the predictions as JSON to this file.")
    flags.DEFINE_string("video", None, "Predict a video file (features extracted in-process).")
    from ave_tf import extract

    extract.define_model_flags()  # --vggish_checkpoint, --vgg19_weights, --start_seconds, ...


class InputFileError(ValueError):
    """An input file that cannot be read as videos (the message names file and field)."""


def _batched(array: np.ndarray, name: str, path, rank: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == rank - 1:
        array = array[np.newaxis]
    if array.ndim != rank:
        raise InputFileError(f"{path}: field {name!r} has shape {array.shape}")
    return array


def read_videos(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Video ids, audio (N, 10, 128) and visual (N, 10, 7, 7, 512) from an .npz or .h5 file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    fields = {}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            fields = {key: data[key] for key in data.files}
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as data:
            fields = {key: data[key][()] for key in data.keys()}
    else:
        raise InputFileError(f"{path}: expected an .npz or .h5 file")
    for name in ("audio", "visual"):
        if name not in fields:
            raise InputFileError(f"{path}: missing field {name!r} (has {sorted(fields)})")
    audio = _batched(fields["audio"], "audio", path, 3)
    visual = _batched(fields["visual"], "visual", path, 5)
    ids = fields.get("video_id")
    if ids is None:
        ids = [f"{path.stem}[{i}]" for i in range(audio.shape[0])]
    else:
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in np.atleast_1d(ids)]
    return ids, audio, visual


def read_tfds(spec: str, data_dir: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Video ids, audio and visual from `tfds_ave/<config>:<split>`."""
    prefix, sep, split = spec.partition(":")
    dataset, _, config = prefix.partition("/")
    if dataset != "tfds_ave" or not sep or not config or not split:
        raise InputFileError(f"--tfds must look like tfds_ave/synthetic:test[:8]; got {spec!r}")
    from ave_tf import data  # lazy: TFDS is only needed here

    builder = data.prepare_builder(config, data_dir=data_dir)
    ids, audio, visual = [], [], []
    for example in builder.as_dataset(split=split).as_numpy_iterator():
        video_id = example["video_id"]
        ids.append(video_id.decode() if isinstance(video_id, bytes) else str(video_id))
        audio.append(example["audio"])
        visual.append(example["visual"])
    if not ids:
        raise InputFileError(f"--tfds {spec}: the split is empty")
    return ids, np.stack(audio), np.stack(visual)


def local_predictor(model_dir: str | os.PathLike):
    """A function (audio, visual) -> named outputs running the SavedModel in-process.

    `model_dir` is a version directory or a model base directory (its highest version).
    """
    from ave_tf.export import saved_model_versions
    from ave_tf.serving.repository import load_version

    model_dir = pathlib.Path(model_dir)
    if (model_dir / "saved_model.pb").is_file():
        version = int(model_dir.name) if model_dir.name.isdigit() else 0
        loaded = load_version(model_dir, version)
    else:
        versions = saved_model_versions(model_dir)
        if not versions:
            raise InputFileError(f"{model_dir}: no SavedModel version directory found")
        loaded = load_version(model_dir / str(versions[-1]), versions[-1])

    def predict(audio, visual):
        audio, visual = check_inputs(audio, visual)
        return loaded.predict(rest_api.DEFAULT_SIGNATURE, {"audio": audio, "visual": visual})

    return predict


def predict_in_batches(predict_outputs, audio, visual, batch_size: int) -> Prediction:
    """Runs `predict_outputs(audio, visual) -> outputs` over batches; one Prediction."""
    parts = [
        predict_outputs(audio[i : i + batch_size], visual[i : i + batch_size])
        for i in range(0, audio.shape[0], batch_size)
    ]
    names = parts[0].keys()
    return Prediction.from_outputs(
        {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in names}
    )


def video_reports(video_ids: list[str], prediction: Prediction) -> list[dict]:
    """Per video: id, category, segment classes and events (JSON-safe)."""
    reports = []
    for i, video_id in enumerate(video_ids):
        events = segment_events(
            prediction.segment_classes[i],
            prediction.segment_probabilities[i],
            class_names=prediction.class_names,
        )
        category = int(prediction.video_class[i])
        reports.append(
            {
                "video_id": video_id,
                "video_class": category,
                "video_class_name": prediction.class_names[category],
                "segment_classes": prediction.segment_classes[i].tolist(),
                "events": [event.to_dict() for event in events],
                "timeline": format_timeline(events),
            }
        )
    return reports


def main(argv):
    files = argv[1:]
    if [bool(FLAGS.tfds), bool(files), bool(FLAGS.video)].count(True) != 1 or len(files) > 1:
        raise app.UsageError(
            "give exactly one FILE (.npz/.h5), --tfds tfds_ave/<config>:<split> or --video FILE"
        )
    if bool(FLAGS.server) == bool(FLAGS.local):
        raise app.UsageError("give exactly one of --server URL or --local MODEL_DIR")
    try:
        if FLAGS.tfds:
            video_ids, audio, visual = read_tfds(FLAGS.tfds, FLAGS.data_dir)
        elif FLAGS.video:
            from ave_tf import extract

            video_ids, audio, visual = extract.video_features(FLAGS.video)
        else:
            video_ids, audio, visual = read_videos(files[0])
        if FLAGS.local:
            predict_outputs = local_predictor(FLAGS.local)
        else:
            client = ServingClient(
                FLAGS.server,
                FLAGS.model,
                version=FLAGS.version,
                label=FLAGS.label,
                request_format=FLAGS.request_format,
                compress=FLAGS.gzip,
                timeout=FLAGS.timeout,
            )
            predict_outputs = client.predict_outputs
        prediction = predict_in_batches(predict_outputs, audio, visual, FLAGS.batch_size)
    except (InputFileError, ValueError, ServingError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reports = video_reports(video_ids, prediction)
    for report in reports:
        print(f"{report['video_id']} ({report['video_class_name']}):")
        for line in report["timeline"].splitlines():
            print(f"  {line}")
    if FLAGS.json_output:
        write_json_atomic(FLAGS.json_output, reports)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
