"""Test session setup: quiet TensorFlow, and two logical CPU devices for replica tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


def pytest_collection_modifyitems(config, items):
    """Drops `test_session`, a helper TF's TestCase inherits that pytest mistakes for a test."""
    items[:] = [item for item in items if item.name != "test_session"]
