"""Predicts event timelines for videos through TF Serving's REST API or in-process.

    python -m ave_tf.predict --server http://127.0.0.1:8501 --model psp_fully videos.npz
    python -m ave_tf.predict --grpc 127.0.0.1:8500 --model psp_fully videos.npz
    python -m ave_tf.predict --server http://127.0.0.1:8501 --binary videos.npz  # b64 float32
    python -m ave_tf.predict --local saved_models/psp_fully --tfds tfds_ave/synthetic:test[:8]
    # (after TFDS's two lines about building the dataset, the first time)
    #> ...
    #> syn20000070 (Accordion):
    #>   Accordion from 0 s to 3 s (confidence 0.10)
    #>   ...

Each video prints its id (the file's `video_ids`, else `videos[i]` for `videos.npz`) and its
category, then one indented line per event (or `no event`).

FILE is an `.npz` or `.h5` features file (`ave_tf.videos`: `audio` (N, 10, 128) and `visual`
(N, 10, 7, 7, 512), a single video may drop the leading N, optionally `video_ids` (N,)
strings). `--tfds tfds_ave/<config>:<split>` reads a split of the project's TFDS dataset
instead; `--video clip.mp4 --vggish_checkpoint=CKPT --vgg19_weights=H5` extracts one video's
features in-process (`ave_tf.extract`). `--local` takes a `.keras` file, a SavedModel folder or
a versioned export root (`ave_tf.predictors`).

With `--video` and a video-in model (`ave_tf.export_video`, e.g. `--server URL --model
psp_video` or `--local saved_models/psp_video`), no weights are needed here: the clip is decoded
and sampled here (`ave_tf.extraction.decode`), its 160 frames JPEG-encoded (`--frame_format`)
and its audio sent as 16 kHz int16 PCM (`ave_tf.extraction.clip_encoding`), b64 over REST, and
the model extracts the features itself. `--json_output` writes every video's classes,
events and video category as JSON. Bad input (file, split, model, a server's error answer): one
`error:` line, exit 2.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import pathlib

from absl import flags

from ave_tf import extract, videos
from ave_tf.atomic_files import write_json_atomic
from ave_tf.errors import UsageError
from ave_tf.events import format_timeline, segment_events
from ave_tf.extraction import clip_encoding, decode
from ave_tf.serving import clip_client, rest_format
from ave_tf.inputs import check_inputs
from ave_tf.model_files import resolve_model_path
from ave_tf.predictors import (
    VIDEO_SIGNATURE_INPUTS,
    load_predictor,
    predict_in_batches,
    signature_inputs,
)
from ave_tf.serving.client import Prediction, ServingClient, ServingError

FLAGS = flags.FLAGS
DEFAULT_TIMEOUT = 60.0
VIDEO_TIMEOUT = 900.0


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string("server", None, "TF Serving REST base URL, e.g. http://127.0.0.1:8501.")
    flags.DEFINE_string(
        "grpc", None, "TF Serving gRPC target HOST:PORT, e.g. 127.0.0.1:8500 (instead of --server)."
    )
    flags.DEFINE_string("model", "psp_fully", "Model name on the server.")
    flags.DEFINE_integer("version", None, "Pin a model version on the server.")
    flags.DEFINE_string("label", None, "Pin a model version label on the server.")
    flags.DEFINE_string(
        "local", None, "Predict in-process with this .keras file, SavedModel or export root."
    )
    flags.DEFINE_string("tfds", None, "Read videos from tfds_ave/<config>:<split> instead of FILE.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory for --tfds.")
    flags.DEFINE_enum("request_format", "columnar", list(rest_format.FORMATS), "REST body format.")
    flags.DEFINE_bool("gzip", False, "gzip-compress request bodies.")
    flags.DEFINE_bool(
        "binary",
        False,
        "Send features as base64 raw float32 to the predict_bytes signature (~4x smaller "
        "than JSON numbers and much faster to encode; needs a model exported with it).",
    )
    flags.DEFINE_integer("batch_size", 16, "Videos per request.", lower_bound=1)
    flags.DEFINE_float(
        "timeout",
        None,
        f"Seconds per HTTP attempt or gRPC call (default {DEFAULT_TIMEOUT:g}; "
        f"{VIDEO_TIMEOUT:g} for a --video sent to a video-in model, which runs VGG19 on 160 "
        "frames per video).",
    )
    flags.DEFINE_string("json_output", None, "Write the predictions as JSON to this file.")
    flags.DEFINE_string(
        "video",
        None,
        "Predict a video file: sent as frames + audio to a video-in model, else its features "
        "are extracted in-process (--vggish_checkpoint, --vgg19_weights).",
    )
    flags.DEFINE_enum(
        "frame_format",
        "jpeg",
        list(clip_encoding.IMAGE_FORMATS),
        "How --video frames travel to a video-in model: jpeg (small) or png (lossless).",
    )
    flags.DEFINE_integer(
        "jpeg_quality",
        clip_encoding.DEFAULT_JPEG_QUALITY,
        "JPEG quality of --video frames sent to a video-in model.",
        lower_bound=1,
        upper_bound=100,
    )
    extract.define_model_flags()  # --vggish_checkpoint, --vgg19_weights, --start_seconds, ...


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


def read_videos(files: list[str], tfds_spec: str | None, data_dir: str | None, video: str | None):
    """The videos of the one FILE, of `--tfds` or of `--video` (`ave_tf.videos.Videos`)."""
    if [bool(tfds_spec), bool(files), bool(video)].count(True) != 1 or len(files) > 1:
        raise UsageError(
            "give exactly one FILE (.npz/.h5), --tfds tfds_ave/<config>:<split> or --video FILE"
        )
    if tfds_spec:
        config, split = videos.parse_split_spec(tfds_spec)
        return videos.read_split(config, split, data_dir=data_dir)
    if video:
        return extract.video_features(video)
    return videos.read_features_file(files[0])


def clip_request(path: str) -> dict:
    """The video-in model's inputs for the ``--video`` file (decoded and encoded here)."""
    clip = decode.read_clip(path, FLAGS.start_seconds, FLAGS.silent_audio)
    try:
        return clip_encoding.clip_inputs([clip], FLAGS.frame_format, FLAGS.jpeg_quality)
    except UsageError as error:  # too little audio
        raise decode.ClipError(path, str(error)) from None


def takes_clips(input_names) -> bool:
    """Whether a signature with these inputs is the video-in model's."""
    return sorted(input_names) == sorted(VIDEO_SIGNATURE_INPUTS)


def server_predictor(client, clips: bool):
    """``inputs -> outputs`` through a `ServingClient` (REST: features as JSON numbers or b64
    float32 with `binary`, a video-in model's frames and waveform as b64 values) or a
    `GrpcClient` (binary TensorProtos; frames and waveform as string tensors)."""
    if not isinstance(client, ServingClient):  # gRPC
        if clips:
            return client.predict_outputs

        def predict_features(inputs):
            audio, visual = check_inputs(inputs["audio"], inputs["visual"])
            return client.predict_outputs({"audio": audio, "visual": visual})

        return predict_features
    if clips:
        return lambda inputs: clip_client.predict_rest(client, inputs)
    return lambda inputs: client.predict_outputs(inputs["audio"], inputs["visual"])


def server_client():
    """The `ServingClient` (``--server``) or `GrpcClient` (``--grpc``) the flags ask for."""
    if FLAGS.server:
        return ServingClient(
            FLAGS.server,
            FLAGS.model,
            version=FLAGS.version,
            label=FLAGS.label,
            request_format=FLAGS.request_format,
            compress=FLAGS.gzip,
            binary=FLAGS.binary,
            timeout=FLAGS.timeout or DEFAULT_TIMEOUT,
        )
    from ave_tf.serving.grpc_client import GrpcClient  # TensorFlow: after the checks

    try:
        return GrpcClient(
            FLAGS.grpc, FLAGS.model, FLAGS.version, FLAGS.label, FLAGS.timeout or DEFAULT_TIMEOUT
        )
    except ValueError as error:
        raise UsageError(f"--grpc: {error}") from None


def main(argv):
    if [bool(FLAGS.server), bool(FLAGS.grpc), bool(FLAGS.local)].count(True) != 1:
        raise UsageError("give exactly one of --server URL, --grpc HOST:PORT or --local MODEL")
    # The inputs first, before TensorFlow, a model or a server: a video file PyAV opens, a
    # features file read here (a --tfds split: once TFDS is imported), a --local model path.
    if FLAGS.video:
        decode.check_video(FLAGS.video, FLAGS.silent_audio, flag="video")
    videos = None if FLAGS.video or FLAGS.tfds else read_videos(argv[1:], None, None, None)
    if FLAGS.local:
        resolve_model_path(FLAGS.local)
    try:
        if FLAGS.local:  # (the model is looked at first only for a --video)
            clips = FLAGS.video is not None and takes_clips(signature_inputs(FLAGS.local))
        else:
            client = server_client()
            clips = FLAGS.video is not None and takes_clips(
                clip_client.signature_input_names(client.metadata())
            )
            if clips:  # minutes of CPU per video; a retry would only start it again
                client.timeout = FLAGS.timeout or VIDEO_TIMEOUT
                if isinstance(client, ServingClient):
                    client.retries = 0
    except (ServingError, ValueError) as error:
        raise UsageError(str(error)) from None
    if clips:
        if argv[1:] or FLAGS.tfds:
            raise UsageError(
                f"model {FLAGS.local or FLAGS.model} takes a video: give --video FILE alone"
            )
        inputs, video_ids = clip_request(FLAGS.video), [pathlib.Path(FLAGS.video).stem]
    else:
        if videos is None:
            videos = read_videos(argv[1:], FLAGS.tfds, FLAGS.data_dir, FLAGS.video)
        inputs, video_ids = videos.inputs, list(videos.video_ids)
    predict = load_predictor(FLAGS.local) if FLAGS.local else server_predictor(client, clips)
    try:
        outputs = predict_in_batches(predict, inputs, FLAGS.batch_size)
        prediction = Prediction.from_outputs(outputs)
    except (ServingError, ValueError) as error:  # the server's answer, or one without outputs
        raise UsageError(str(error)) from None
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
    cli.run(main)
