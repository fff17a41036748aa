"""Multi-host training: a small custom loop with `strategy.run`.

Keras 3's `fit` fails under `tf.distribute.MultiWorkerMirroredStrategy` on TF 2.21
(keras-team/keras#20585: "Attempt to convert a value (PerReplica...) to a Tensor"). This loop
trains the same compiled model with the same `training_objectives` losses, loss weights and
optimizer (learning-rate schedule included), drives the same callbacks (selection, backup,
TensorBoard) and validates with the same metrics, evaluated locally on every worker.

Loss scaling: each replica computes the weighted sum of the per-output losses averaged over
its local batch, divided by `num_replicas_in_sync` (`keras.losses.Loss.__call__` already does
that division inside a replica context; plain callables are divided here); the optimizer
all-reduces (sums) the gradients, so the update is the one for the mean over the global batch,
and the SUM over replicas of the scaled losses is the global mean loss that gets logged.
"""

import keras
import tensorflow as tf


def _objectives(config):
    from ave_tf.models import training_objectives

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
        callbacks: Keras callbacks (given the model, called at epoch boundaries).
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
    iterator = iter(strategy.experimental_distribute_dataset(stream.dataset))
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = 0.0
        for _, _, metric in train_metrics:
            metric.reset_state()
        for _ in range(stream.steps_per_epoch):
            total += float(train_step(iterator))
        logs = {"loss": total / stream.steps_per_epoch}
        logs.update({key: float(metric.result()) for key, _, metric in train_metrics})
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()
