"""Small manual directories for the ``videos`` and ``clips`` configs: generated clips
(`ave_tf.testing.clips`), for the tests and ``tfds_ave/dummy_data/videos``.

`write_videos_dir` writes a fake AVE release (`fake_release`: ``Annotations.txt``, the split
files and, on request, feature files) whose videos exist as files ``AVE/<id>.mp4``; some YouTube
ids are annotated twice, as in AVE. The clips differ from each other (frame rate, audio
channels, frame width), so their features do too.
"""

import fractions

from etils import epath

from ave_tf.testing import clips
from tfds_ave import fake_release, release, videos

_NTSC = fractions.Fraction(30000, 1001)
_FRAME_RATES = (fractions.Fraction(25), _NTSC, fractions.Fraction(24))
# Widths whose red stripe (width // 4 pixels) covers different fractions of the frame.
_WIDTHS = (64, 66, 70, 74, 78, 82, 86)


def clip_spec(index: int) -> clips.ClipSpec:
    """The ``index``-th clip: 10 s, its frame rate, channels and width cycling."""
    return clips.ClipSpec(
        seconds=10,
        fps=_FRAME_RATES[index % len(_FRAME_RATES)],
        channels=1 + index % 2,
        width=_WIDTHS[index % len(_WIDTHS)],
    )


def write_videos_dir(
    directory: epath.PathLike,
    rows: int,
    repeated: dict[int, int] | None = None,
    seed: int = 0,
    keep_features: bool = False,
) -> list[str]:
    """Writes a manual directory of the ``videos`` config (without model files).

    Args:
        directory: output folder (created).
        rows: annotation lines.
        repeated: ``{row: earlier_row}``: ``row`` is annotated with ``earlier_row``'s YouTube
            id (two events of one video, as AVE's 45 ids annotated twice).
        seed: seed of `fake_release.write_fake_release` (labels, splits, ids).
        keep_features: keep the fake release's feature files, so that the same folder also
            builds the ``features`` config (same labels, splits and keys).

    Returns:
        The YouTube id of every row.
    """
    directory = epath.Path(directory)
    fake_release.write_fake_release(directory, rows, seed=seed, with_label_files=False)
    if not keep_features:
        for name in (release.AUDIO, release.VISUAL):
            (directory / name).unlink()
    lines = (directory / release.ANNOTATIONS).read_text().splitlines()
    fields = [line.split("&") for line in lines]
    for row, earlier in (repeated or {}).items():
        fields[row][1] = fields[earlier][1]
    (directory / release.ANNOTATIONS).write_text("\n".join("&".join(f) for f in fields) + "\n")
    ids = [field[1] for field in fields]
    folder = directory / videos.VIDEOS_DIR
    folder.mkdir(exist_ok=True)
    for index, video_id in enumerate(dict.fromkeys(ids)):
        clips.write_clip(folder / f"{video_id}.mp4", clip_spec(index))
    return ids
