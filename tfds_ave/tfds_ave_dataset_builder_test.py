"""TFDS builder tests of tfds_ave on tiny dummy data (tfds_ave/dummy_data, make_dummy_data.py)."""

import os
import signal
import subprocess
import sys
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from tfds_ave import interrupted_builds, make_dummy_data, synthetic, tfds_ave_dataset_builder

# synthetic_full at a test-only size: the same config code path and generator, fewer videos.
# synthetic_test.py checks that the generator is prefix-stable, so these are exactly the first
# videos of each split of the real synthetic_full.
_TINY_FULL_SIZES = synthetic.SplitSizes(train=40, validation=8, test=8, train_background=4)
TINY_EXTRACTOR = "ave_tf.testing.tiny_extractors:tiny_feature_extractor"


class FeaturesConfigTest(tfds.testing.DatasetBuilderTestCase):
    """The real-release config on a fake 10-video release (+2 background videos)."""

    DATASET_CLASS = tfds_ave_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["features"]
    SPLITS = {"train": 8, "validation": 1, "test": 1, "train_background": 2}
    SKIP_CHECKSUMS = True


class SyntheticFullConfigTest(tfds.testing.DatasetBuilderTestCase):
    """The registered synthetic_full config with its split sizes patched down for the test."""

    DATASET_CLASS = tfds_ave_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["synthetic_full"]
    SPLITS = _TINY_FULL_SIZES.as_dict()
    SKIP_CHECKSUMS = True

    def setUp(self):
        super().setUp()
        config = tfds_ave_dataset_builder.Builder.builder_configs["synthetic_full"]
        patcher = mock.patch.object(config, "sizes", _TINY_FULL_SIZES)
        patcher.start()
        self.addCleanup(patcher.stop)


class _VideoConfigTest(tfds.testing.DatasetBuilderTestCase):
    """A registered video config on dummy_data/<config>/ with the tiny random models (named by
    the config's extractor_factory: what a Beam worker imports) instead of the model files."""

    DATASET_CLASS = tfds_ave_dataset_builder.Builder
    SKIP_CHECKSUMS = True
    SKIP_TF1_GRAPH_MODE = True
    # resampy loads its filter with np.load(path): third-party code, not the builder's I/O.
    MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False

    def setUp(self):
        super().setUp()
        config = tfds_ave_dataset_builder.Builder.builder_configs[
            self.BUILDER_CONFIG_NAMES_TO_TEST[0]
        ]
        for field, value in {"extractor_factory": TINY_EXTRACTOR, "batch_size": 16}.items():
            patcher = mock.patch.object(config, field, value)
            patcher.start()
            self.addCleanup(patcher.stop)


class VideosConfigTest(_VideoConfigTest):
    """4 annotation rows, 3 clips (one YouTube id annotated in train and in test)."""

    BUILDER_CONFIG_NAMES_TO_TEST = ["videos"]
    EXAMPLE_DIR = make_dummy_data.DUMMY_DATA / "videos"
    SPLITS = {"train": 2, "validation": 1, "test": 1}


class ClipsConfigTest(_VideoConfigTest):
    """A CSV of 4 events on the same 3 clips; classes from the CSV."""

    BUILDER_CONFIG_NAMES_TO_TEST = ["clips"]
    EXAMPLE_DIR = make_dummy_data.DUMMY_DATA / "clips"
    SPLITS = {"train": 3, "test": 1}


del _VideoConfigTest  # not a test of its own


@pytest.mark.slow
class SyntheticConfigTest(tfds.testing.DatasetBuilderTestCase):
    """The embedded default at its real size (536 videos, about 0.5 GB of TFRecords)."""

    DATASET_CLASS = tfds_ave_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["synthetic"]
    SPLITS = synthetic.SMALL.as_dict()
    SKIP_CHECKSUMS = True


def test_registered_configs_have_the_documented_sizes():
    configs = {config.name: config for config in tfds_ave_dataset_builder.Builder.BUILDER_CONFIGS}
    assert set(configs) == {"synthetic", "synthetic_full", "features", "videos", "clips"}
    assert {name: config.source for name, config in configs.items()} == {
        "synthetic": "synthetic",
        "synthetic_full": "synthetic",
        "features": "features",
        "videos": "videos",
        "clips": "clips",
    }
    assert tfds_ave_dataset_builder.Builder.DEFAULT_CONFIG_NAME == "synthetic"
    assert configs["synthetic_full"].sizes == synthetic.SplitSizes(3339, 402, 402, 178)
    assert configs["features"].sizes is None
    assert configs["videos"].vggish_checkpoint == "vggish_model.ckpt"
    assert configs["videos"].vgg19_weights == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert not configs["videos"].extractor_factory and not configs["videos"].skip_missing
    # The extracted configs moved on with VGGish's fc2 ReLU; custom ones of their sources too.
    versions = {
        name: str(
            tfds.core.dataset_builder.canonical_version_for_config(
                tfds_ave_dataset_builder.Builder, config
            )
        )
        for name, config in configs.items()
    }
    assert versions == {
        "synthetic": "1.0.0",
        "synthetic_full": "1.0.0",
        "features": "1.0.0",
        "videos": "1.1.0",
        "clips": "1.1.0",
    }
    assert "fc2 ReLU" in configs["clips"].release_notes["1.1.0"]
    custom = tfds_ave_dataset_builder.BuilderConfig(name="videos_mine", source="videos")
    assert custom.version == "1.1.0"
    small = configs["synthetic"].sizes
    assert 200 <= small.train <= 400 and small.validation >= 90 and small.test >= 90


# A `features` build that stalls in its test split (train and validation are written by then),
# to be killed mid-write.
_STALLED_BUILD = """
import sys, time
import tensorflow_datasets as tfds
from tfds_ave import release
original = release.stream_examples
def stalled(data, split):
    for item in original(data, split):
        yield item
        if split == "test":
            print("writing", flush=True)
            time.sleep(3600)
release.stream_examples = stalled
builder = tfds.builder("tfds_ave", config="features", data_dir=sys.argv[1])
builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=sys.argv[2]))
"""


def _build_features(data_dir):
    builder = tfds.builder("tfds_ave", config="features", data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(make_dummy_data.DUMMY_DATA))
    )
    return builder


def test_a_build_removes_what_a_killed_build_left(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", _STALLED_BUILD, str(tmp_path), str(make_dummy_data.DUMMY_DATA)],
        stdout=subprocess.PIPE,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        lines = iter(child.stdout.readline, b"")  # TFDS prints its progress there too
        assert b"writing\n" in lines, "the stalled build did not start"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    config_dir = tmp_path / "tfds_ave" / "features"
    left = [p for p in config_dir.iterdir() if p.name.startswith("incomplete.")]
    assert len(left) == 1 and any(left[0].iterdir()), "the killed build left nothing to clean"
    builder = _build_features(tmp_path)
    assert builder.is_prepared()
    assert sorted(p.name for p in config_dir.iterdir()) == ["1.0.0"]


def test_a_running_build_of_the_same_config_is_left_alone(tmp_path):
    config_dir = tmp_path / "tfds_ave" / "features"
    running = config_dir / "incomplete.RUNNG1_1.0.0"
    running.mkdir(parents=True)
    (running / "tfds_ave-train.tfrecord-00000-of-00001").write_bytes(b"partial")
    with interrupted_builds.removed_beside(running):  # this build holds the lock meanwhile
        _build_features(tmp_path)
    assert sorted(p.name for p in config_dir.iterdir()) == ["1.0.0", running.name]


if __name__ == "__main__":
    tfds.testing.test_main()
