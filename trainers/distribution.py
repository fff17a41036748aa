"""Where a run's computation happens: the `tf.distribute` strategy and the multi-host loop.

Strategies (`make_strategy`):

- ``one_device``: the first GPU, else CPU:0.
- ``mirrored``: `MirroredStrategy` over all local GPUs, else over all logical CPUs.
- ``multi_worker``: `MultiWorkerMirroredStrategy` from the ``TF_CONFIG`` environment variable,
  trained by `fit_custom_loop`.
- ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one worker, else ``mirrored``
  over the local GPUs, else one CPU device.

Multi-host training: Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` on TF 2.21
(keras-team/keras#20585: "Attempt to convert a value (PerReplica...) to a Tensor").
`fit_custom_loop` trains the same compiled model with the same `training_objectives` losses,
loss weights and optimizer (learning-rate schedule included), drives the same callbacks
(selection, backup, logs) and validates with the same metrics, evaluated locally on every
worker.

Loss scaling: each replica computes the weighted sum of the per-output losses averaged over
its local batch, divided by `num_replicas_in_sync` (`keras.losses.Loss.__call__` already does
that division inside a replica context; plain callables are divided here); the optimizer
all-reduces (sums) the gradients, so the update is the one for the mean over the global batch,
and the SUM over replicas of the scaled losses is the global mean loss that gets logged.
"""

import json
import os

import keras
import tensorflow as tf

from ave_tf.errors import UsageError
from ave_tf.models import training_objectives


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


def feed(strategy, dataset: tf.data.Dataset):
    """`dataset` distributed to `strategy`'s replicas: what `fit`, `evaluate` and the loop read.

    By default a strategy's iterator buffers one batch on the host and one per device ahead of
    the step. On CPU devices both buffers are host memory (2 x 128 MB at batch 128 with the
    full-size visual maps, beside the split held by ``--in_memory``) and overlap only the
    gather of the next batch (~2% of a CPU step), so there the batches are read when the step
    asks for them (buffer size 0): one batch in flight. Accelerators keep the default read
    ahead (the copy to the device overlaps the step). The data and its order are unchanged.
    """
    on_cpus = all(
        tf.DeviceSpec.from_string(device).device_type == "CPU"
        for device in strategy.extended.worker_devices
    )
    options = (
        tf.distribute.InputOptions(experimental_per_replica_buffer_size=0) if on_cpus else None
    )
    return strategy.experimental_distribute_dataset(dataset, options)


def is_multi_worker(strategy) -> bool:
    """Whether `strategy` spans several hosts (trained with `fit_custom_loop`)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's outputs (always, outside a multi-host cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def _objectives(config):
    return training_objectives(config.model)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def weighted_loss(losses, loss_weights, targets, outputs, replicas=1):
    """Sum over outputs of weight * loss(target, output) (each loss a batch mean).

    Inside `strategy.run` pass `replicas=num_replicas_in_sync`: Keras `Loss` objects divide
    by it themselves there; other callables are divided here.
    """
    total = 0.0
    for name, loss in losses.items():
        weight = 1.0 if loss_weights is None else loss_weights.get(name, 1.0)
        value = loss(targets[name], outputs[name])
        if not isinstance(loss, keras.losses.Loss):
            value = value / replicas
        total += weight * value
    return total


def evaluate_locally(model, config, dataset):
    """`{"loss", "<output>_<metric>"...}` of `model` on `dataset`, on this worker only."""
    losses, loss_weights, metrics = _objectives(config)
    named = [(f"{name}_{m.name}", name, m) for name, ms in metrics.items() for m in _as_list(ms)]
    predict = tf.function(lambda inputs: model(inputs, training=False))
    total, batches = 0.0, 0
    for inputs, targets in dataset:
        outputs = predict(inputs)
        total += float(weighted_loss(losses, loss_weights, targets, outputs))
        batches += 1
        for _, output_name, metric in named:
            metric.update_state(targets[output_name], outputs[output_name])
    results = {"loss": total / max(batches, 1)}
    results.update({key: float(metric.result()) for key, _, metric in named})
    return results


def fit_custom_loop(model, config, stream, strategy, epochs, callbacks, initial_epoch, selector):
    """Trains `model` (built and compiled in `strategy.scope()`) for `epochs` epochs.

    Args:
        model: compiled Keras model; its optimizer is used.
        config: the run's `TrainConfig`.
        stream: `ave_tf.data.TrainingStream` (global batches).
        strategy: the `MultiWorkerMirroredStrategy` (any strategy works).
        epochs: total epochs; training starts at `initial_epoch` (resume).
        callbacks: Keras callbacks (given the model, called at epoch and batch ends).
        selector: the `ValidationSelection` among `callbacks`; validates with
            `evaluate_locally` since `model.evaluate` shares fit's problem.
    """
    losses, loss_weights, metrics = _objectives(config)
    with strategy.scope():
        train_metrics = [
            (f"{name}_{m.name}", name, m) for name, ms in metrics.items() for m in _as_list(ms)
        ]
    optimizer = model.optimizer
    replicas = strategy.num_replicas_in_sync

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = weighted_loss(losses, loss_weights, targets, outputs, replicas)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        for _, name, metric in train_metrics:
            metric.update_state(targets[name], outputs[name])
        return loss

    @tf.function(jit_compile=False)
    def train_step(iterator):
        per_replica = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    selector.evaluate_fn = lambda m, dataset: evaluate_locally(m, config, dataset)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    iterator = iter(feed(strategy, stream.dataset))
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = 0.0
        for _, _, metric in train_metrics:
            metric.reset_state()
        for step in range(stream.steps_per_epoch):
            total += float(train_step(iterator))
            callback_list.on_train_batch_end(step)
        logs = {"loss": total / stream.steps_per_epoch}
        logs.update({key: float(metric.result()) for key, _, metric in train_metrics})
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()
