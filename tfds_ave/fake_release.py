"""Writes a fake AVE release (the layout of ``release.LAYOUT``) with synthetic features.

For tests and benchmarks only. A full-size set (4,143 videos, about 4.3 GB) measures the
``features`` build's time and memory without the real download::

    python -m tfds_ave.fake_release --output_dir=/tmp/ave_fake --videos=4143 --background=178

Never commit a full-size set. ``make_dummy_data.py`` uses this module for the tiny
``dummy_data/``.
"""

from collections.abc import Sequence

import h5py
import numpy as np
from absl import app, flags
from etils import epath

from ave_tf import ave
from tfds_ave import annotations, release, synthetic

_CHUNK = 64


def _video_id(rng: np.random.Generator) -> str:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    return "".join(rng.choice(alphabet, 11))


def _split_sizes(videos: int) -> tuple[int, int, int]:
    """AVE's proportions 3339 / 402 / 402 scaled to ``videos``."""
    validation = max(1, round(videos * 402 / 4143))
    test = max(1, round(videos * 402 / 4143))
    return videos - validation - test, validation, test


def write_fake_release(
    directory: epath.PathLike,
    videos: int,
    background: int = 0,
    seed: int = 0,
    sparsify: float | None = None,
    compression: str | None = None,
    with_label_files: bool = True,
) -> epath.Path:
    """Writes ``Annotations.txt``, the split files, the features and (optionally) labels.

    Args:
        directory: output folder (created).
        videos: number of annotated videos.
        background: number of noisy background-only videos (0: no noisy files).
        seed: seed of the synthetic features, labels and splits.
        sparsify: when set, visual values below it are zeroed (makes tiny dummy files
            compress well).
        compression: HDF5 compression of the feature datasets (e.g. ``"gzip"``).
        with_label_files: also write ``right_labels.h5``, ``mil_labels.h5`` and
            ``prob_label.h5`` derived from the annotations (cross-checked by the builder).

    Returns:
        The directory.
    """
    directory = epath.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 4143])
    category_p = np.asarray(synthetic.CATEGORY_COUNTS, np.float64)
    categories = rng.choice(len(category_p), size=videos, p=category_p / category_p.sum())
    spans = np.asarray(synthetic.SPAN_COUNTS, np.int64)
    chosen = rng.choice(len(spans), size=videos, p=spans[:, 2] / spans[:, 2].sum())
    starts, ends = spans[chosen, 0], spans[chosen, 1]
    ids = [_video_id(rng) for _ in range(videos)]
    lines = [
        f"{ave.CATEGORY_NAMES[c]}&{video_id}&good&{s}&{e}"
        for c, video_id, s, e in zip(categories, ids, starts, ends, strict=True)
    ]
    (directory / release.ANNOTATIONS).write_text("\n".join(lines) + "\n")

    order = rng.permutation(videos)
    train, validation, _ = _split_sizes(videos)
    parts = {
        "train": order[:train],
        "validation": order[train : train + validation],
        "test": order[train + validation :],
    }
    for split, name in release.SPLIT_FILES.items():
        with h5py.File(directory / name, "w") as handle:
            handle.create_dataset(release.ORDER_KEY, data=parts[split].astype(np.int64))

    _write_features(
        directory / release.AUDIO,
        directory / release.VISUAL,
        videos,
        seed,
        0,
        categories,
        starts,
        ends,
        sparsify,
        compression,
        np.float32,
    )
    if background:
        audio_path, visual_path, labels_path = (directory / n for n in release.NOISY_FILES)
        none = np.zeros(background, np.int64)
        _write_features(
            audio_path,
            visual_path,
            background,
            seed,
            1,
            np.full(background, ave.BACKGROUND),
            none,
            none,
            sparsify,
            compression,
            np.float64,
        )
        with h5py.File(labels_path, "w") as handle:
            labels = annotations.video_labels(np.full(background, ave.BACKGROUND))
            handle.create_dataset(release.FEATURE_KEY, data=labels)
    if with_label_files:
        labels = annotations.segment_labels(categories, starts, ends)
        derived = {
            "right_labels.h5": np.eye(ave.NUM_CLASSES, dtype=np.float32)[labels],
            "mil_labels.h5": annotations.video_labels(categories),
            "prob_label.h5": annotations.prob_labels(labels),
        }
        for name, values in derived.items():
            with h5py.File(directory / name, "w") as handle:
                handle.create_dataset(release.FEATURE_KEY, data=values)
    return directory


def _write_features(
    audio_path,
    visual_path,
    count,
    seed,
    stream,
    categories,
    starts,
    ends,
    sparsify,
    compression,
    audio_dtype,
) -> None:
    """Writes synthetic features chunk by chunk (constant memory)."""
    prototypes = synthetic.prototypes_for(seed)
    options = {"compression": compression} if compression else {}
    with h5py.File(audio_path, "w") as audio_file, h5py.File(visual_path, "w") as visual_file:
        audio_data = audio_file.create_dataset(
            release.FEATURE_KEY, (count, *release.AUDIO_SHAPE), audio_dtype, **options
        )
        visual_data = visual_file.create_dataset(
            release.FEATURE_KEY,
            (count, *release.VISUAL_SHAPE),
            np.float32,
            chunks=(1, *release.VISUAL_SHAPE) if compression else None,
            **options,
        )
        for first in range(0, count, _CHUNK):
            part = slice(first, min(count, first + _CHUNK))
            rng = np.random.default_rng([seed, 97 + stream, first])
            if stream:
                heard = np.zeros((part.stop - first, ave.NUM_SEGMENTS), np.float32)
                seen = (rng.random(heard.shape) < synthetic.P_BACKGROUND_VISIBLE).astype(np.float32)
            else:
                heard, seen = synthetic.presence(rng, starts[part], ends[part])
            audio, visual = synthetic.video_features(rng, prototypes, categories[part], heard, seen)
            if sparsify is not None:
                visual[visual < sparsify] = 0.0
                visual = np.round(visual, 1)
                audio = np.round(audio, 2)
            audio_data[part] = audio.astype(audio_dtype)
            visual_data[part] = visual


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string("output_dir", None, "Folder to write the fake release to.")
    flags.DEFINE_integer("videos", 4143, "Annotated videos (AVE: 4,143).")
    flags.DEFINE_integer("background", 178, "Background-only videos (AVE: 178).")
    flags.DEFINE_integer("seed", 0, "Seed.")
    flags.mark_flag_as_required("output_dir")


def main(argv: Sequence[str]) -> None:
    del argv
    options = flags.FLAGS
    path = write_fake_release(options.output_dir, options.videos, options.background, options.seed)
    total = sum(f.stat().length for f in path.iterdir())
    print(
        f"wrote {path}: {options.videos} videos + {options.background} background, "
        f"{total / 2**30:.2f} GiB"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
