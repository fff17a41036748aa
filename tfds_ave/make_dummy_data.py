"""Regenerates ``tfds_ave/dummy_data/``: a tiny fake AVE release for the builder tests.

    python -m tfds_ave.make_dummy_data

10 annotated videos (8 train / 1 validation / 1 test) and 2 background-only videos, with
synthetic features whose small visual values are zeroed and which are stored gzip-compressed,
so the whole folder stays around a hundred kilobytes.
"""

from collections.abc import Sequence

from absl import app
from etils import epath

from tfds_ave import fake_release

DUMMY_DATA = epath.Path(__file__).parent / "dummy_data"
VIDEOS = 10
BACKGROUND = 2


def main(argv: Sequence[str]) -> None:
    del argv
    if DUMMY_DATA.exists():
        DUMMY_DATA.rmtree()
    fake_release.write_fake_release(
        DUMMY_DATA, VIDEOS, BACKGROUND, seed=1, sparsify=2.5, compression="gzip"
    )
    total = sum(path.stat().length for path in DUMMY_DATA.iterdir())
    print(f"wrote {DUMMY_DATA} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    app.run(main)
