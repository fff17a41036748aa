"""One training job: seeds x (fit, select on validation, test once), results, export.

`run_training(config)` is what `python -m trainers.fully` / `trainers.weakly` do:

1. `prepare_model_dir` refuses a model_dir that holds another config (unless overwrite) and
   writes the resolved `config.json`; `check_export_dir` proves the export dir is writable.
2. For each seed, `train_seed` builds and compiles the model inside the strategy's scope and
   calls `model.fit` (or `trainers.distribution.fit_custom_loop` under multi-worker) with the
   callbacks of `trainers.callbacks` (selection, backup, dropout seeds, scalar logs, Ctrl-C);
   after training it reloads the selected epoch's weights and evaluates the test split once. A
   finished seed's `seed_<s>/result.json` makes a restarted job skip it; its backup is
   deleted only after that file is written.
3. `results.json` and a printed table; the best-validation seed's selected model is exported
   with `ave_tf.export.export_saved_model`.

`train_and_report` is the body of `python -m trainers.fully` / `trainers.weakly` once
`trainers.config.config_from_command_line` has checked their flags.
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import sys
import tempfile
import time

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_framework_config

from ave_tf import data, interrupts
from ave_tf.atomic_files import atomic_path, read_json, write_json_atomic
from ave_tf.errors import UsageError
from ave_tf.export import export_saved_model
from ave_tf.models import model_for_config, training_objectives, training_view
from ave_tf.predictors import load_keras_model
from trainers import callbacks as callbacks_lib
from trainers import config as config_lib
from trainers import distribution, reports, schedule


def build_model(config):
    """The network's Keras model."""
    return model_for_config(config.model)


def make_optimizer(config, steps_per_epoch):
    """Adam with the official step decay (see `trainers.schedule`)."""
    learning_rate = schedule.OfficialStepDecay(
        config.learning_rate,
        steps_per_epoch,
        factor=config.lr_decay_factor,
        every=config.lr_decay_every,
        until=config.lr_decay_until,
    )
    return keras.optimizers.Adam(learning_rate, epsilon=config.adam_epsilon)


def build_and_compile(config, strategy, steps_per_epoch):
    """(full model, compiled training view), built inside `strategy.scope()`.

    The view (`ave_tf.models.training_view`) is compiled with `training_objectives`.
    """
    with strategy.scope():
        full_model = build_model(config)
        losses, loss_weights, metrics = training_objectives(config.model)
        model = training_view(full_model, config.model)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=losses,
            loss_weights=loss_weights,
            metrics=metrics,
            jit_compile=config.jit_compile,
        )
    return full_model, model


def targets_for(model, dataset):
    """`dataset`'s (inputs, targets) batches with only the targets of `model`'s outputs.

    The pipelines (`ave_tf.data`) give the fully supervised AVPS target always; the training
    view (`ave_tf.models.training_view`) has no `av_similarity` output when `avps_weight` is 0
    (PSP's "w/o AVPS", AVEL's default), and Keras refuses targets without an output.
    """
    names = tuple(model.output)
    return dataset.map(lambda inputs, targets: (inputs, {name: targets[name] for name in names}))


def prepare_model_dir(config):
    """Checks model_dir against `config` and writes `<model_dir>/config.json`.

    Raises:
        UsageError: model_dir holds a run with another config, or is a non-empty folder
            without config.json, and `config.overwrite` is off. Nothing is deleted then.
    """
    model_dir = pathlib.Path(config.model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise UsageError(f"--model_dir {model_dir} exists and is not a folder")
    path = model_dir / "config.json"
    try:
        stored = read_json(path) if model_dir.exists() else None
    except ValueError:
        stored = {}  # Unreadable: a different config.
    if stored is not None:
        try:
            same = config_lib.TrainConfig.from_dict(stored).computation() == config.computation()
        except (ValueError, TypeError, AttributeError):
            same = False
        if not same and not config.overwrite:
            raise UsageError(
                f"{path} holds a run with a different config; use another --model_dir "
                "or pass --overwrite to replace it"
            )
    elif model_dir.exists() and any(model_dir.iterdir()) and not config.overwrite:
        raise UsageError(
            f"--model_dir {model_dir} is not empty and holds no config.json; "
            "use another folder or pass --overwrite"
        )
    if config.overwrite and model_dir.exists() and (stored is None or not same):
        shutil.rmtree(model_dir)
    try:
        write_json_atomic(path, config.to_dict())
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def check_export_dir(config):
    """Raises UsageError unless `config.export_dir` (when set) can hold new files."""
    if not config.export_dir:
        return
    export_dir = pathlib.Path(config.export_dir)
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write_probe_", dir=export_dir)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise UsageError(
            f"--export_dir {export_dir} is not writable: {error.strerror or error}"
        ) from None


def train_seed(config, seed, source, strategy, run_dir, callbacks=()):
    """Trains one seed, selects on validation, evaluates the test split once.

    Returns:
        The seed's result dict (also written to `<run_dir>/result.json`).
    """
    run_dir = pathlib.Path(run_dir)
    done = read_json(run_dir / "result.json")
    if done is not None:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # Killed before it was deleted.
        return done
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    backup = callbacks_lib.Backup(run_dir / "backup")
    if backup.notice:
        print(f"warning: {backup.notice}", file=sys.stderr, flush=True)
    initial_epoch = backup.initial_epoch
    stream = source.training(config.train_split, config.batch_size, seed, initial_epoch)
    full_model, model = build_and_compile(config, strategy, stream.steps_per_epoch)
    stream = dataclasses.replace(stream, dataset=targets_for(model, stream.dataset))
    validation = targets_for(model, source.evaluation(config.validation_split, config.batch_size))
    multi_worker = distribution.is_multi_worker(strategy)
    if not multi_worker:  # `evaluate_locally` (multi-worker) reads the plain dataset.
        validation = distribution.feed(strategy, validation)
    selector = callbacks_lib.ValidationSelection(
        validation,
        epochs=config.epochs,
        every=config.eval_every,
        run_dir=run_dir,
        initial_epoch=initial_epoch,
        examples_per_epoch=stream.examples_per_epoch,
    )
    all_callbacks = [
        selector,
        callbacks_lib.EpochSeeds(seed),
        backup,
        callbacks_lib.ScalarLogs(pathlib.Path(config.model_dir) / "logs" / run_dir.name),
        *callbacks,
        callbacks_lib.StopOnCtrlC(),
    ]
    if multi_worker:
        distribution.fit_custom_loop(
            model,
            config,
            stream,
            strategy,
            epochs=config.epochs,
            callbacks=all_callbacks,
            initial_epoch=initial_epoch,
            selector=selector,
        )
    else:
        model.fit(
            distribution.feed(strategy, stream.dataset),
            epochs=config.epochs,
            steps_per_epoch=stream.steps_per_epoch,
            callbacks=all_callbacks,
            verbose=callbacks_lib.progress_verbosity(),
            shuffle=False,
        )
    interrupts.raise_if_requested()  # Ctrl-C at the last epoch's end: a re-run resumes here.
    selector.restore_selected(model)
    # The test split is read here, once, after selection is final.
    test_dataset = targets_for(model, source.evaluation(config.test_split, config.batch_size))
    if multi_worker:
        test_metrics = distribution.evaluate_locally(model, config, test_dataset)
    else:
        test_metrics = model.evaluate(
            distribution.feed(strategy, test_dataset), verbose=0, return_dict=True
        )
    selected_path = run_dir / "selected.keras"
    with atomic_path(selected_path, suffix=".keras") as temporary:
        full_model.save(temporary)
    speeds = [r["videos_per_second"] for r in selector.records[1:] if "videos_per_second" in r]
    result = {
        "seed": seed,
        "replicas": int(strategy.num_replicas_in_sync),
        "selected_epoch": selector.selected_epoch,
        "validation_accuracy": selector.best["accuracy"],
        "test_accuracy": callbacks_lib.selection_accuracy(test_metrics),
        "test_metrics": {k: float(v) for k, v in test_metrics.items()},
        "epochs": selector.records,
        "validations": selector.validations,
        "train_seconds": sum(r["seconds"] for r in selector.records),
        "videos_per_second": (sorted(speeds)[len(speeds) // 2] if speeds else None),
        "wall_seconds_this_process": time.perf_counter() - start,
        "selected_model": str(selected_path),
    }
    write_json_atomic(run_dir / "result.json", result)
    backup.delete()
    return result


def export_selected(config, runs):
    """Exports the best-validation seed's selected model; returns the version folder."""
    best = max(runs, key=lambda r: (r["validation_accuracy"], -r["seed"]))
    model = load_keras_model(best["selected_model"])
    return export_saved_model(model, config.export_dir, config.export_name)


def mixed_policy() -> str:
    """The Keras dtype policy of `--mixed_precision`: float16 on a GPU, else bfloat16."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def _numerics(config):
    """The run's dtype policy and op determinism, restored afterwards."""
    previous_policy = keras.config.dtype_policy()
    was_deterministic = tf_framework_config.is_op_determinism_enabled()
    if config.mixed_precision:
        keras.config.set_dtype_policy(mixed_policy())
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if config.deterministic and not was_deterministic:
            tf_framework_config.disable_op_determinism()


def run_training(config, source=None, strategy=None, callbacks=()):
    """The whole job for `config`; returns the results dict (also in results.json)."""
    with _numerics(config):
        return _run_training(config, source, strategy, callbacks)


def _run_training(config, source, strategy, callbacks):
    strategy = strategy or distribution.make_strategy(config.strategy)
    if not distribution.is_chief(strategy):
        task = strategy.cluster_resolver.task_id
        config = config.replace(
            model_dir=f"{config.model_dir.rstrip('/')}-worker{task}", export_dir=""
        )
    check_export_dir(config)
    source = source or data.TfdsSource(
        config.dataset,
        config.setting,
        data_dir=config.data_dir,
        manual_dir=config.manual_dir,
        in_memory=config.in_memory,
    )
    prepare_model_dir(config)
    start = time.perf_counter()
    runs = []
    for seed in config.seeds:
        run_dir = pathlib.Path(config.model_dir) / f"seed_{seed}"
        runs.append(train_seed(config, seed, source, strategy, run_dir, callbacks))
    interrupts.raise_if_requested()
    export_path = export_selected(config, runs) if config.export_dir else None
    wall = time.perf_counter() - start
    summary = reports.summarize(config, runs, wall, export_path)
    reports.write_results(pathlib.Path(config.model_dir) / "results.json", summary)
    return summary


def train_and_report(config):
    """Body of `python -m trainers.<setting>` once its flags are checked: training, then the
    printed table."""
    summary = run_training(config)
    print(reports.format_table(summary))
    print(f"results: {config.model_dir}/results.json")
