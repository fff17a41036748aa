"""TFDS builder of AVE: the real release (``features``), the videos (``videos``, your own
clips: ``clips``, both on Apache Beam) and a synthetic AVE.

Build from the repository root::

    tfds build tfds_ave --config=synthetic
    tfds build tfds_ave --config=features --manual_dir=/path/to/AVE/data
    tfds build tfds_ave --config=videos --manual_dir=/path/to/AVE \
        --beam_pipeline_options="direct_num_workers=2,direct_running_mode=multi_processing"

or from Python after ``import tfds_ave``: ``tfds.load("tfds_ave/synthetic")``.
"""

import contextlib
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from tensorflow_datasets.core import shuffle as tfds_shuffle

from ave_tf import ave
from ave_tf.extraction import RECIPE_VERSION
from tfds_ave import clips_csv, interrupted_builds, release, synthetic, videos

FEATURE_ENCODING = tfds.features.Encoding.BYTES
"""How the float32 feature tensors are stored: raw little-endian bytes.

Measured by ``benchmarks/data_benchmark.py`` (see docs/data.md, "Encoding"): ZLIB saves little on
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


SOURCES = ("synthetic", "features", "videos", "clips")
"""What a config builds from: the generator, or what ``manual_dir`` holds."""

_INITIAL_RELEASE_NOTES = {"1.0.0": "Initial release: features, synthetic and synthetic_full."}
EXTRACTED_VERSION = "1.1.0"
"""The version of every config that extracts its features (``videos``, ``clips`` and custom
configs of those sources): a build by an earlier extractor is not reused."""
EXTRACTED_RELEASE_NOTES = {
    **_INITIAL_RELEASE_NOTES,
    EXTRACTED_VERSION: "Audio features through VGGish's fc2 ReLU, as the 2018 vggish_slim.py "
    "that made the AVE release (extraction recipe 2). 1.0.0 builds of these configs hold the "
    "signed fc2 values of the earlier extractor: the new version keeps them from being reused.",
}

_FAILURES_DIR = "video_failures"


class VideoBuildError(RuntimeError):
    """Videos that could not be decoded; the build wrote no dataset. Lists every video."""


@dataclasses.dataclass(eq=False)
class BuilderConfig(tfds.core.BuilderConfig):
    """A tfds_ave config.

    The fields after ``seed`` concern the ``videos`` and ``clips`` sources. A build with other
    values is a config of its own (TFDS refuses a changed config under a registered name)::

        tfds build tfds_ave --manual_dir=DIR --config='{"name": "videos_mine",
            "source": "videos", "vgg19_weights": "/models/vgg19_notop.h5"}'

    Attributes:
        source: one of `SOURCES`.
        sizes: videos per split of the synthetic source.
        seed: seed of the synthetic generator.
        vggish_checkpoint: the official VGGish checkpoint; relative paths are read from
            manual_dir.
        vgg19_weights: Keras' VGG19 weights file; relative paths are read from manual_dir.
        batch_size: frames per VGG19 call.
        extractor_factory: ``"module:callable"`` returning an
            ``ave_tf.extraction.extractor.FeatureExtractor`` (called with ``batch_size=``,
            once per Beam worker) instead of loading the two model files; importable on every
            worker. Empty: the model files.
        skip_missing: build without the videos whose file is missing (their ids go to the
            dataset's metadata and the log) instead of failing before any work.
        clips_csv: the ``clips`` source's CSV, relative to manual_dir (or absolute).
    """

    source: str = "features"
    sizes: synthetic.SplitSizes | None = None
    seed: int = 0
    vggish_checkpoint: str = videos.VGGISH_CHECKPOINT
    vgg19_weights: str = videos.VGG19_WEIGHTS
    batch_size: int = 32
    extractor_factory: str = ""
    skip_missing: bool = False
    clips_csv: str = clips_csv.CLIPS_CSV

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(
                f"config {self.name!r}: source {self.source!r} is not one of {SOURCES}"
            )
        if self.source in ("videos", "clips") and self.version is None:
            self.version = EXTRACTED_VERSION
            self.release_notes = EXTRACTED_RELEASE_NOTES


class Builder(tfds.core.GeneratorBasedBuilder):
    """AVE: per video, audio and visual features with segment-level event labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = _INITIAL_RELEASE_NOTES
    BUILDER_CONFIGS = [
        BuilderConfig(
            name="synthetic",
            description=(
                "Small seeded synthetic AVE (no download): "
                f"{synthetic.SMALL.train}/{synthetic.SMALL.validation}/{synthetic.SMALL.test} "
                f"videos + {synthetic.SMALL.train_background} background-only videos."
            ),
            source="synthetic",
            sizes=synthetic.SMALL,
        ),
        BuilderConfig(
            name="synthetic_full",
            description=(
                "AVE-sized synthetic AVE: 3,339/402/402 videos + 178 background-only videos."
            ),
            source="synthetic",
            sizes=synthetic.FULL,
        ),
        BuilderConfig(
            name="features",
            description="The real AVE release's pre-extracted features, read from manual_dir.",
        ),
        BuilderConfig(
            name="videos",
            description=(
                "AVE's videos, features extracted on Apache Beam (VGGish, VGG19): the "
                "features config's examples, from manual_dir's videos and model files."
            ),
            source="videos",
        ),
        BuilderConfig(
            name="clips",
            description=(
                "Your own labelled clips listed in manual_dir's clips.csv "
                "(video_path,split,category,start,end), features extracted on Apache Beam; "
                "the classes are the CSV's categories, then background."
            ),
            source="clips",
        ),
    ]
    DEFAULT_CONFIG_NAME = "synthetic"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "The synthetic configs need no files. For 'features' download the AVE release's data "
        "folder (features and labels, https://github.com/YapengTian/AVE-ECCV18) and pass it "
        "as --manual_dir.\n" + release.LAYOUT + "\n" + videos.LAYOUT + "\n" + clips_csv.LAYOUT
    )

    def _info(self) -> tfds.core.DatasetInfo:
        segments = ave.NUM_SEGMENTS
        # The clips' classes come from their CSV: named when the build reads it.
        clips = self.builder_config.source == "clips"
        class_names = None if clips else ave.CLASS_NAMES
        classes = None if clips else ave.NUM_CLASSES
        from_videos = self.builder_config.source in ("videos", "clips")
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
                        tfds.features.ClassLabel(names=class_names),
                        length=segments,
                        doc="Class of each segment: the category inside the event, else "
                        "background (28).",
                    ),
                    "category": tfds.features.ClassLabel(
                        names=class_names,
                        doc="The video's event category (background for background-only videos).",
                    ),
                    "event_start": tfds.features.Scalar(dtype=np.int32, doc="First event segment."),
                    "event_end": tfds.features.Scalar(
                        dtype=np.int32, doc="One past the last event segment (== start: none)."
                    ),
                    "video_label": tfds.features.Tensor(
                        shape=(classes,),
                        dtype=np.float32,
                        doc="Multi-hot video classes (the release's mil_labels.h5 / "
                        "labels_noisy.h5).",
                    ),
                    "prob_label": tfds.features.Tensor(
                        shape=(classes,),
                        dtype=np.float32,
                        doc="Mean of the 10 segment one-hots: the weak target Y_weak.",
                    ),
                }
            ),
            supervised_keys=None,
            homepage="https://sites.google.com/view/audiovisualresearch",
            metadata=tfds.core.MetadataDict() if from_videos else None,
        )

    def _download_and_prepare(self, dl_manager, download_config):
        # Runs inside TFDS's temporary folder: self.data_dir is <config>/incomplete.*_<version>.
        with interrupted_builds.removed_beside(self.data_dir):
            with _shuffle_memory(SHUFFLE_MEMORY_BYTES):
                if self.builder_config.source not in ("videos", "clips"):
                    return super()._download_and_prepare(dl_manager, download_config)
                failures = epath.Path(self.data_dir) / _FAILURES_DIR
                try:
                    result = super()._download_and_prepare(dl_manager, download_config)
                except Exception as error:
                    # E.g. TFDS refuses a split that is empty because all its videos failed.
                    _raise_if_failed(failures, error)
                    raise
                _raise_if_failed(failures)
                return result

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        if config.source in ("videos", "clips"):
            return self._video_split_generators(epath.Path(dl_manager.manual_dir))
        if config.source == "synthetic":
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

    def _video_split_generators(self, manual_dir: epath.Path) -> dict:
        """Checks manual_dir (every missing video listed before any work), then one Beam
        transform per split."""
        from tfds_ave import extraction_beam  # Beam: only for the video configs

        config = self.builder_config
        spec = extraction_beam.ExtractorSpec(
            vggish_checkpoint=_resolve(manual_dir, config.vggish_checkpoint),
            vgg19_weights=_resolve(manual_dir, config.vgg19_weights),
            batch_size=config.batch_size,
            factory=config.extractor_factory,
        )
        if config.extractor_factory:
            extraction_beam.import_factory(config.extractor_factory)  # fails here, not on workers
        else:
            absent = [
                path
                for path in (spec.vggish_checkpoint, spec.vgg19_weights)
                if not epath.Path(path).exists()
            ]
            if absent:
                raise videos.VideosError(
                    f"model file not found: {', '.join(absent)} (builder config fields "
                    "vggish_checkpoint, vgg19_weights)"
                )
        if config.source == "clips":
            names, plan = clips_csv.plan_clips(manual_dir, config.clips_csv, config.skip_missing)
            self.info.features["category"].names = names
            self.info.features["segment_labels"].feature.names = names
        else:
            plan = videos.plan_videos(manual_dir, config.skip_missing)
        metadata = self.info.metadata
        metadata["skipped_videos"] = [list(skipped) for skipped in plan.skipped]
        metadata["extractor"] = config.extractor_factory or {
            "vggish_checkpoint": epath.Path(spec.vggish_checkpoint).name,
            "vgg19_weights": epath.Path(spec.vgg19_weights).name,
        }
        metadata["recipe_version"] = RECIPE_VERSION
        if plan.skipped:
            logging.warning(
                "tfds_ave: skip_missing: building without %d videos: %s",
                len(plan.skipped),
                ", ".join(video_id for video_id, _ in plan.skipped),
            )
        failures = str(epath.Path(self.data_dir) / _FAILURES_DIR)
        return {
            split: extraction_beam.ExtractSplit(jobs, spec, failures)
            for split, jobs in plan.splits.items()
            if jobs
        }

    def _process_pipeline_result(self, pipeline_result) -> None:
        """Logs the extraction metrics (Beam's, summed over the workers)."""
        from tfds_ave import extraction_beam  # Beam: only for the video configs

        totals = extraction_beam.metric_totals(pipeline_result)
        logging.info(
            "tfds_ave: %d videos extracted (%.1f s each on average), %d failed",
            totals["videos_done"],
            totals["mean_seconds_per_video"],
            totals["videos_failed"],
        )


def _raise_if_failed(folder: epath.Path, cause: Exception | None = None) -> None:
    """Raises `VideoBuildError` listing every video recorded in ``folder`` as failed."""
    from tfds_ave import extraction_beam  # Beam: only for the video configs

    failures = extraction_beam.read_failures(folder)
    if failures:
        lines = "\n".join(f"  {video_id} ({path}): {reason}" for video_id, path, reason in failures)
        raise VideoBuildError(
            f"{len(failures)} videos could not be decoded; no dataset was written:\n{lines}"
        ) from cause


def _resolve(directory: epath.Path, path: str) -> str:
    """``path`` itself when absolute or remote (``gs://...``), else relative to ``directory``."""
    return path if "://" in path or path.startswith("/") else str(directory / path)
