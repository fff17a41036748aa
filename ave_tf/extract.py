"""Extracts AVE features (VGGish audio, VGG19 visual) from your own video files.

    python -m ave_tf.extract --vggish_checkpoint=vggish_model.ckpt \\
        --vgg19_weights=vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
        --output=out/features.h5 clip1.mp4 clip2.mkv
    # (a progress bar on stderr, one step per video; then on stdout:)
    #> wrote out/features.h5: 2 videos, audio (2, 10, 128), visual (2, 10, 7, 7, 512)

    python -m ave_tf.extract ... --videos_dir=AVE --annotations=Annotations.txt --output=out/ave.h5

Videos come as arguments, or from ``--videos_dir`` (every video file in it, by name, or with
``--annotations`` one row per line of AVE's ``Annotations.txt``, the file ``<YouTubeID>.*``).
Each video gives the 10 s from ``--start_seconds``. The output is written atomically; finished
videos are kept in ``<output>.parts/`` so an interrupted run continues where it stopped when
rerun with the same command. Then ``python -m ave_tf.predict --local MODEL out/features.h5``.
"""

from ave_tf import cli  # noqa: I001  (first: quiet TensorFlow start-up)

import pathlib
import sys

from absl import flags

from ave_tf import interrupts
from ave_tf.errors import UsageError
from ave_tf.extraction import decode
from ave_tf.extraction.extractor import FeatureExtractor
from ave_tf.extraction.features_file import FeatureParts
from ave_tf.videos import Videos

FLAGS = flags.FLAGS
VIDEO_SUFFIXES = frozenset(
    ".mp4 .mkv .webm .avi .mov .m4v .flv .mpg .mpeg .ts .3gp .wmv .ogv".split()
)


def define_weight_flags() -> None:
    """Flags for the two weight files (also used by ``ave_tf.export_video``)."""
    flags.DEFINE_string(
        "vggish_checkpoint", None, "The official VGGish checkpoint, vggish_model.ckpt."
    )
    flags.DEFINE_string(
        "vgg19_weights",
        None,
        "Keras' VGG19 weights file (vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or the "
        "one with the classifier), or 'imagenet' to let Keras download it.",
    )


def define_model_flags() -> None:
    """Flags for the two weight files and the clip span (also used by ``ave_tf.predict``)."""
    define_weight_flags()
    flags.DEFINE_float(
        "start_seconds", 0.0, "Start of the 10 s span of each video.", lower_bound=0.0
    )
    flags.DEFINE_bool(
        "silent_audio",
        False,
        "A video without an audio stream gets the features of silence instead of an error.",
    )


def define_flags() -> None:
    """Defines this command's flags (only when run as a program)."""
    define_model_flags()
    flags.DEFINE_string("output", None, "The features file to write (.h5).")
    flags.DEFINE_string("videos_dir", None, "Take the videos from this folder.")
    flags.DEFINE_string(
        "annotations", None, "With --videos_dir: AVE's Annotations.txt, one row per line."
    )
    flags.DEFINE_integer("batch_size", 32, "Frames per VGG19 call.", lower_bound=1)


def check_weight_flags() -> None:
    """``--vggish_checkpoint`` and ``--vgg19_weights`` are given and name existing files (a
    `UsageError` otherwise); looks at the files only (the weights load with TensorFlow)."""
    for name in ("vggish_checkpoint", "vgg19_weights"):
        if not FLAGS[name].value:
            raise UsageError(f"--{name} is required (see docs/videos.md)")
    checkpoint = pathlib.Path(FLAGS.vggish_checkpoint)  # a V1 file or a V2 prefix
    if not (checkpoint.exists() or pathlib.Path(f"{checkpoint}.index").exists()):
        raise UsageError(f"VGGish checkpoint {checkpoint}: no such file")  # (as vggish says)
    if FLAGS.vgg19_weights != "imagenet" and not pathlib.Path(FLAGS.vgg19_weights).is_file():
        raise UsageError(f"{FLAGS.vgg19_weights}: no such VGG19 weights file")  # (as vgg19 says)


def feature_extractor(batch_size: int = 32):
    """The `FeatureExtractor` of ``--vggish_checkpoint`` and ``--vgg19_weights``."""
    check_weight_flags()
    return FeatureExtractor.from_files(FLAGS.vggish_checkpoint, FLAGS.vgg19_weights, batch_size)


def video_features(path: str):
    """One video file as `ave_tf.videos.Videos` (audio (1, 10, 128), visual (1, 10, 7, 7, 512)),
    extracted with the model flags: what ``ave_tf.predict --video`` predicts on (which has
    checked the file with `decode.check_video` before anything loads)."""
    audio, visual = feature_extractor().extract(path, FLAGS.start_seconds, FLAGS.silent_audio)
    return Videos(audio[None], visual[None], None, (pathlib.Path(path).stem,))


def list_videos(
    files: list[str], videos_dir: str | None, annotations: str | None
) -> list[tuple[str, pathlib.Path]]:
    """``(video_id, path)`` per output row: the files given, or those of ``videos_dir`` (by
    name, or in annotation order, one row per annotation line)."""
    if bool(files) == bool(videos_dir):
        raise UsageError("give video files or --videos_dir, not both and not neither")
    if annotations and not videos_dir:
        raise UsageError("--annotations needs --videos_dir")
    if files:
        paths = [decode.check_video_file(file) for file in files]
        return [(path.stem, path) for path in paths]
    folder = pathlib.Path(videos_dir)
    if not folder.is_dir():
        raise UsageError(f"--videos_dir {folder}: no such folder")
    found = {
        path.stem: path
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    }
    if not annotations:
        if not found:
            raise UsageError(f"--videos_dir {folder}: no video files ({' '.join(VIDEO_SUFFIXES)})")
        return list(found.items())
    from tfds_ave.annotations import AnnotationError, parse_annotations  # (tfds_ave imports TFDS)

    source = pathlib.Path(annotations)
    if not source.is_file():
        raise UsageError(f"--annotations {source}: no such file")
    try:
        lines = parse_annotations(source.read_text(encoding="utf-8"), str(source))
    except AnnotationError as error:
        raise UsageError(str(error)) from None
    missing = [line.video_id for line in lines if line.video_id not in found]
    if missing:
        raise UsageError(
            f"--videos_dir {folder}: no video file for {len(missing)} of the {len(lines)} "
            f"annotated videos (e.g. {', '.join(missing[:3])})"
        )
    return [(line.video_id, found[line.video_id]) for line in lines]


def extract_to_file(
    videos: list[tuple[str, pathlib.Path]],
    output: str | pathlib.Path,
    make_extractor,
    start_seconds: float = 0.0,
    silent_audio: bool = False,
) -> pathlib.Path:
    """Extracts every video (once, even if listed twice) and writes the features file.

    Args:
        videos: ``(video_id, path)`` per output row (`list_videos`).
        output: the features file (.h5); finished videos are kept in ``<output>.parts/``
            and a rerun with the same settings continues from them.
        make_extractor: ``() -> FeatureExtractor``, called only if a video is left to do.
        start_seconds, silent_audio: as in `FeatureExtractor.extract`.

    Returns:
        The output path.
    """
    import tqdm  # tqdm (comes with TFDS): only when videos are extracted

    parts = FeatureParts(output, {"start_seconds": start_seconds, "silent_audio": silent_audio})
    distinct = list({str(path): path for _, path in videos}.values())  # annotated twice: once
    todo = [path for path in distinct if not parts.has(path)]
    if len(todo) < len(distinct):
        done = len(distinct) - len(todo)
        print(f"resuming: {done} of {len(distinct)} videos already extracted", file=sys.stderr)
    if parts.from_recipe_1:
        print(
            f"resuming: {parts.folder} was begun before VGGish's fc2 had its ReLU; its audio "
            "features get it now (max(x, 0): exactly the features of this version)",
            file=sys.stderr,
        )
    if todo:
        extractor = make_extractor()
        for path in tqdm.tqdm(todo, desc="extract", unit="video", file=sys.stderr):
            audio, visual = extractor.extract(path, start_seconds, silent_audio)
            parts.add(path, audio, visual)
            interrupts.raise_if_requested()  # A Ctrl-C that a finalizer swallowed.
    return parts.finish(videos)


def main(argv):
    if not FLAGS.output:
        raise UsageError("--output FEATURES.h5 is required")
    videos = list_videos(argv[1:], FLAGS.videos_dir, FLAGS.annotations)
    if argv[1:]:  # the files named (a folder's videos are looked at as they are extracted)
        for _, path in videos:
            decode.check_video(path, FLAGS.silent_audio)
    output = extract_to_file(
        videos,
        FLAGS.output,
        lambda: feature_extractor(FLAGS.batch_size),
        FLAGS.start_seconds,
        FLAGS.silent_audio,
    )
    count = len(videos)
    print(
        f"wrote {output}: {count} videos, audio ({count}, 10, 128), visual ({count}, 10, 7, 7, 512)"
    )
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(
        main,
        interrupted_message="interrupted: finished videos are kept in OUTPUT.parts/; "
        "rerun the same command to continue",
    )
