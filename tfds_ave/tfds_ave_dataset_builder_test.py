"""TFDS builder tests of tfds_ave on tiny dummy data (tfds_ave/dummy_data, make_dummy_data.py)."""

from unittest import mock

import pytest
import tensorflow_datasets as tfds

from tfds_ave import synthetic, tfds_ave_dataset_builder

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


if __name__ == "__main__":
    tfds.testing.test_main()
