"""Test session setup: quiet TensorFlow, two logical CPU devices for replica tests, Python's
own Ctrl-C handler, and exit 0 for a marker selection with nothing to run."""

import os
import signal

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

# The Ctrl-C tests need SIGINT delivered, in this process and in the programs it starts, as in
# one started from a terminal; a suite started as a background job inherits SIGINT ignored,
# which `ave_tf.interrupts` (like Python) keeps ignoring.
signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    """Drops `test_session`, a helper TF's TestCase inherits that pytest mistakes for a test."""
    items[:] = [item for item in items if item.name != "test_session"]


def pytest_sessionfinish(session, exitstatus):
    """A marker selection (`-m slow`, `-m "not slow"`: CI's two steps) that selects no test
    passes: pytest's exit code 5 would fail CI for a step with nothing to run."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.option.markexpr:
        session.exitstatus = pytest.ExitCode.OK
