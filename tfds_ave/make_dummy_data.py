"""Regenerates ``tfds_ave/dummy_data/``: a tiny fake AVE release for the builder tests.

    python -m tfds_ave.make_dummy_data

10 annotated videos (8 train / 1 validation / 1 test) and 2 background-only videos, with
synthetic features whose small visual values are zeroed and which are stored gzip-compressed,
so the whole folder stays around a hundred kilobytes. ``videos/`` is the manual directory of the
``videos`` config (4 annotation rows, 3 generated 10 s clips: one YouTube id annotated twice),
``clips/`` the one of the ``clips`` config (its CSV names the same clips).
"""

from collections.abc import Sequence

from absl import app
from etils import epath

from tfds_ave import clips_csv, fake_release, video_fixtures, videos

DUMMY_DATA = epath.Path(__file__).parent / "dummy_data"
VIDEOS = 10
BACKGROUND = 2
VIDEO_ROWS = 4


def write_video_dummy_data() -> None:
    """``videos/`` and ``clips/`` (the clips CSV points at ``../videos/AVE/``)."""
    ids = video_fixtures.write_videos_dir(DUMMY_DATA / "videos", VIDEO_ROWS, {3: 0}, seed=1)
    files = [f"../videos/{videos.VIDEOS_DIR}/{video_id}.mp4" for video_id in dict.fromkeys(ids)]
    rows = [
        (files[0], "train", "Dog barking", 2, 7),
        (files[1], "train", "Siren", 0, 10),
        (files[0], "train", "Siren", 7, 9),
        (files[2], "test", "Dog barking", 1, 4),
    ]
    lines = [",".join(clips_csv.HEADER), *(",".join(map(str, row)) for row in rows)]
    (DUMMY_DATA / "clips").mkdir(exist_ok=True)
    (DUMMY_DATA / "clips" / clips_csv.CLIPS_CSV).write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str]) -> None:
    del argv
    if DUMMY_DATA.exists():
        DUMMY_DATA.rmtree()
    fake_release.write_fake_release(
        DUMMY_DATA, VIDEOS, BACKGROUND, seed=1, sparsify=2.5, compression="gzip"
    )
    write_video_dummy_data()
    total = sum(path.stat().length for path in DUMMY_DATA.rglob("*") if path.is_file())
    print(f"wrote {DUMMY_DATA} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    app.run(main)
