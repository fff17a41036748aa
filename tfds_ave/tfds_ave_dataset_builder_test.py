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


@pytest.mark.slow
class SyntheticConfigTest(tfds.testing.DatasetBuilderTestCase):
    """The embedded default at its real size (536 videos, about 0.5 GB of TFRecords)."""

    DATASET_CLASS = tfds_ave_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["synthetic"]
    SPLITS = synthetic.SMALL.as_dict()
    SKIP_CHECKSUMS = True


def test_registered_configs_have_the_documented_sizes():
    configs = {config.name: config for config in tfds_ave_dataset_builder.Builder.BUILDER_CONFIGS}
    assert set(configs) == {"synthetic", "synthetic_full", "features"}
    assert tfds_ave_dataset_builder.Builder.DEFAULT_CONFIG_NAME == "synthetic"
    assert configs["synthetic_full"].sizes == synthetic.SplitSizes(3339, 402, 402, 178)
    assert configs["features"].sizes is None
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
