"""The ``videos`` config's manual directory: AVE's videos, annotations and split files.

``plan_videos(directory, skip_missing)`` checks everything that needs no decoding before any
work starts (annotation lines, split files, a video file for every annotated row) and returns,
per split, the `extraction_beam.VideoJob` of each distinct video: the examples are those of the
``features`` config (same keys ``<row>_<youtube id>``, same labels, derived by
`tfds_ave.annotations`), only the features are extracted from the files.
"""

import dataclasses

from etils import epath

from ave_tf.errors import UsageError
from tfds_ave import annotations, release
from tfds_ave.extraction_beam import VideoJob

VIDEOS_DIR = "AVE"
VGGISH_CHECKPOINT = "vggish_model.ckpt"
VGG19_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"

LAYOUT = f"""\
Expected layout of manual_dir for the 'videos' config (the AVE release's AVE_Dataset.zip and
data/ folder, https://github.com/YapengTian/AVE-ECCV18, plus the two model files):
  {release.ANNOTATIONS}              Category&YouTubeID&Quality&Start&End, one line per video
  {VIDEOS_DIR}/<YouTubeID>.mp4            one file per annotated video (any container FFmpeg reads)
  train_order.h5, val_order.h5, test_order.h5   dataset 'order': row indices of each split
  {VGGISH_CHECKPOINT}          the official VGGish checkpoint
  {VGG19_WEIGHTS}   Keras' VGG19 weights
(the model files can live elsewhere: see the builder config fields vggish_checkpoint and
vgg19_weights)"""


class VideosError(UsageError):
    """The manual directory does not hold what a video build needs; the message says what."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a build from video files does.

    Attributes:
        splits: split name -> the split's videos, each once (in order of first annotation).
        skipped: ``(video_id, why)`` of the rows left out (``skip_missing``), sorted.
    """

    splits: dict[str, list[VideoJob]]
    skipped: list[tuple[str, str]]


def video_files(folder: epath.Path) -> dict[str, epath.Path]:
    """Name without suffix -> file, for every file in ``folder``.

    Raises:
        VideosError: the folder is missing, or two files share a name (``a.mp4`` and
            ``a.webm``: which one is the video is not guessed).
    """
    if not folder.is_dir():
        raise VideosError(f"{folder}: no such folder.\n{LAYOUT}")
    files: dict[str, epath.Path] = {}
    for path in sorted(folder.iterdir()):
        stem = path.name.rsplit(".", 1)[0]
        if stem in files:
            raise VideosError(
                f"{folder}: two files for video {stem!r}: {files[stem].name} and {path.name}; "
                "keep one"
            )
        files[stem] = path
    return files


def jobs_of_rows(rows: list[tuple[str, epath.Path, str, dict]]) -> list[VideoJob]:
    """Groups examples by video file: ``(video_id, path, key, fields)`` per example ->
    one `VideoJob` per distinct path, in order of first appearance."""
    grouped: dict[str, tuple[str, list]] = {}
    for video_id, path, key, fields in rows:
        grouped.setdefault(str(path), (video_id, []))[1].append((key, fields))
    return [
        VideoJob(video_id, path, tuple(examples)) for path, (video_id, examples) in grouped.items()
    ]


def missing_message(where: str, missing: list[str], total: int, kind: str) -> str:
    """One error line listing every missing video, and the way to build without them."""
    return (
        f"{where}: no video file for {len(missing)} of the {total} {kind}: "
        f"{', '.join(missing)}. Add them, or build without them with the builder config field "
        "skip_missing=True (recorded in the dataset's metadata)"
    )


def plan_videos(directory: epath.PathLike, skip_missing: bool = False) -> Plan:
    """Checks the manual directory of the ``videos`` config and plans the build.

    Args:
        directory: manual_dir (see `LAYOUT`).
        skip_missing: build without the rows whose video file is missing (they are returned
            in ``Plan.skipped``) instead of raising.

    Raises:
        VideosError: a missing folder or file, or missing videos (every one listed).
        release.ReleaseError: a bad split file or a non-UTF-8 annotation file.
        annotations.AnnotationError: a malformed annotation line.
    """
    directory = epath.Path(directory)
    required = [release.ANNOTATIONS, *release.SPLIT_FILES.values()]
    absent = [name for name in required if not (directory / name).exists()]
    if absent:
        raise VideosError(f"{directory}: missing {', '.join(absent)}.\n{LAYOUT}")
    source = directory / release.ANNOTATIONS
    videos = annotations.parse_annotations(release.utf8_text(source), str(source))
    splits = release.read_splits(directory, len(videos))
    files = video_files(directory / VIDEOS_DIR)
    used = sorted({int(row) for rows in splits.values() for row in rows})
    missing = sorted({videos[row].video_id for row in used if videos[row].video_id not in files})
    if missing and not skip_missing:
        raise VideosError(
            missing_message(str(directory / VIDEOS_DIR), missing, len(used), "annotated rows")
        )
    plan = {}
    for split, rows in splits.items():
        kept = [int(row) for row in rows if videos[int(row)].video_id in files]
        labels = annotations.label_fields(*annotations.as_arrays([videos[row] for row in kept]))
        examples = []
        for row, fields in zip(kept, labels, strict=True):
            video_id = videos[row].video_id
            # The features config's keys: AVE annotates 45 YouTube ids twice.
            key = f"{row:04d}_{video_id}"
            examples.append((video_id, files[video_id], key, {"video_id": video_id, **fields}))
        plan[split] = jobs_of_rows(examples)
    return Plan(plan, [(video_id, "no video file") for video_id in missing])
