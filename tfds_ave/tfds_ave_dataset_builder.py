"""TFDS builder of AVE: the real release (``features``) and a synthetic AVE.

Build from the repository root::

    tfds build tfds_ave --config=synthetic
    tfds build tfds_ave --config=features --manual_dir=/path/to/AVE/data

or from Python after ``import tfds_ave``: ``tfds.load("tfds_ave/synthetic")``.
"""

import contextlib
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from ave_tf import ave
from tfds_ave import interrupted_builds, release, synthetic

FEATURE_ENCODING = tfds.features.Encoding.BYTES
"""How the float32 feature tensors are stored: raw little-endian bytes.

Measured by ``benchmarks/data_benchmark.py`` (see README, section Data): ZLIB saves little on
float features and halves decode throughput; ``NONE`` (a float_list proto) is slower to write
and parse than raw bytes."""

SHUFFLE_MEMORY_BYTES = 256 << 20
"""Examples TFDS's writer keeps in memory before it spills to disk buckets (TFDS: 1 GB).

A video is ~1 MB, so TFDS's default would hold 1,000 videos in RAM and bring the peak RSS of a
full build near 2 GB; 256 MB keeps it well below (see BENCHMARKS.md)."""


@contextlib.contextmanager
def _shuffle_memory(limit: int):
    """Temporarily lowers TFDS's in-memory shuffle buffer (a module constant in TFDS 4.9)."""
    saved = tfds_shuffle.MAX_MEM_BUFFER_SIZE
    tfds_shuffle.MAX_MEM_BUFFER_SIZE = min(saved, limit)
    try:
        yield
    finally:
        tfds_shuffle.MAX_MEM_BUFFER_SIZE = saved


@dataclasses.dataclass(eq=False)
class BuilderConfig(tfds.core.BuilderConfig):
    """A tfds_ave config.

    Attributes:
        sizes: videos per split for the synthetic configs; ``None`` reads the real release
            from ``manual_dir``.
        seed: seed of the synthetic generator.
    """

    sizes: synthetic.SplitSizes | None = None
    seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
    """AVE: per video, audio and visual features with segment-level event labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: features, synthetic and synthetic_full."}
    BUILDER_CONFIGS = [
        BuilderConfig(
            name="synthetic",
            description=(
                "Small seeded synthetic AVE (no download): "
                f"{synthetic.SMALL.train}/{synthetic.SMALL.validation}/{synthetic.SMALL.test} "
                f"videos + {synthetic.SMALL.train_background} background-only videos."
            ),
            sizes=synthetic.SMALL,
        ),
        BuilderConfig(
            name="synthetic_full",
            description=(
                "AVE-sized synthetic AVE: 3,339/402/402 videos + 178 background-only videos."
            ),
            sizes=synthetic.FULL,
        ),
        BuilderConfig(
            name="features",
            description="The real AVE release's pre-extracted features, read from manual_dir.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "synthetic"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Only the 'features' config needs files. Download the AVE release's data folder "
        "(features and labels, https://github.com/YapengTian/AVE-ECCV18) and pass it as "
        "--manual_dir.\n" + release.LAYOUT
    )

    def _info(self) -> tfds.core.DatasetInfo:
        segments = ave.NUM_SEGMENTS
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video_id": tfds.features.Text(doc="YouTube id (synthetic: syn<split><n>)."),
                    "audio": tfds.features.Tensor(
                        shape=(segments, ave.AUDIO_DIM),
                        dtype=np.float32,
                        encoding=FEATURE_ENCODING,
                        doc="VGGish embedding per one-second segment, non-negative.",
                    ),
                    "visual": tfds.features.Tensor(
                        shape=(segments, *ave.VISUAL_SHAPE),
                        dtype=np.float32,
                        encoding=FEATURE_ENCODING,
                        doc="VGG19 pool5 map per segment (mean over its 16 frames).",
                    ),
                    "segment_labels": tfds.features.Sequence(
                        tfds.features.ClassLabel(names=ave.CLASS_NAMES),
                        length=segments,
                        doc="Class of each segment: the category inside the event, else "
                        "background (28).",
                    ),
                    "category": tfds.features.ClassLabel(
                        names=ave.CLASS_NAMES,
                        doc="The video's event category (background for background-only videos).",
                    ),
                    "event_start": tfds.features.Scalar(dtype=np.int32, doc="First event segment."),
                    "event_end": tfds.features.Scalar(
                        dtype=np.int32, doc="One past the last event segment (== start: none)."
                    ),
                    "video_label": tfds.features.Tensor(
                        shape=(ave.NUM_CLASSES,),
                        dtype=np.float32,
                        doc="Multi-hot video classes (the release's mil_labels.h5 / "
                        "labels_noisy.h5).",
                    ),
                    "prob_label": tfds.features.Tensor(
                        shape=(ave.NUM_CLASSES,),
                        dtype=np.float32,
                        doc="Mean of the 10 segment one-hots: the weak target Y_weak.",
                    ),
                }
            ),
            supervised_keys=None,
            homepage="https://sites.google.com/view/audiovisualresearch",
        )

    def _download_and_prepare(self, dl_manager, download_config):
        # Runs inside TFDS's temporary folder: self.data_dir is <config>/incomplete.*_<version>.
        with interrupted_builds.removed_beside(self.data_dir):
            with _shuffle_memory(SHUFFLE_MEMORY_BYTES):
                return super()._download_and_prepare(dl_manager, download_config)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        if config.sizes is not None:
            return {
                split: self._generate_examples(split, size=size)
                for split, size in config.sizes.as_dict().items()
                if size > 0
            }
        data = release.read_release(dl_manager.manual_dir)
        splits = {split: self._generate_examples(split, data=data) for split in data.splits}
        if data.background_videos:
            splits["train_background"] = self._generate_examples("train_background", data=data)
        return splits

    def _generate_examples(self, split: str, size: int = 0, data: release.Release | None = None):
        """Yields ``(video_id, example)``: synthetic when ``data`` is None, else the release."""
        if data is None:
            yield from synthetic.generate(split, size, self.builder_config.seed)
        else:
            yield from release.stream_examples(data, split)
