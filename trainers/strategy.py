"""Choosing the `tf.distribute` strategy of a run.

- ``one_device``: the first GPU, else CPU:0.
- ``mirrored``: `MirroredStrategy` over all local GPUs, else over all logical CPUs.
- ``multi_worker``: `MultiWorkerMirroredStrategy` from the ``TF_CONFIG`` environment variable
  (trained by `trainers.multi_worker`'s custom loop: Keras 3 `fit` fails under it,
  keras-team/keras#20585).
- ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one worker, else ``mirrored``
  over the local GPUs, else one CPU device.
"""

import json
import os

import tensorflow as tf

from trainers.errors import UsageError


def tf_config_workers() -> int:
    """Number of workers in the TF_CONFIG cluster (0 when unset); UsageError if malformed."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise UsageError(f"TF_CONFIG is not a JSON object: {text[:80]!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def resolve_strategy_name(name: str) -> str:
    """The concrete strategy ("mirrored", "multi_worker", "one_device") that `name` means."""
    if name == "auto":
        if tf_config_workers() > 1:
            return "multi_worker"
        return "mirrored" if tf.config.list_logical_devices("GPU") else "one_device"
    if name not in ("mirrored", "multi_worker", "one_device"):
        raise UsageError(
            f"--strategy must be auto, mirrored, multi_worker or one_device; got {name!r}"
        )
    return name


def make_strategy(name: str, devices=None) -> tf.distribute.Strategy:
    """A strategy for `name` (see module docstring); `devices` overrides mirrored's devices."""
    name = resolve_strategy_name(name)
    if name == "multi_worker":
        if tf_config_workers() < 1:
            raise UsageError("--strategy=multi_worker needs TF_CONFIG naming the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    if devices is None:
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=list(devices))
