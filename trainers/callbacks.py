"""The callbacks of a training run: model selection, backups, dropout seeds, logs, progress.

- `ValidationSelection`: validates on the validation split every N epochs and keeps the
  best epoch's weights (the test split is never touched here).
- `Backup`: `keras.callbacks.BackupAndRestore` with atomic writes, a SHA-256 per backup and a
  fallback when a backup is damaged; kept until the seed's results are on disk.
- `EpochSeeds`: dropout randomness that is a function of (seed, epoch, step, call).
- `ScalarLogs`: TensorBoard scalars without the `tensorboard` package.
- `StopOnCtrlC`: ends `fit` at the next batch or epoch end after a Ctrl-C.
- `progress_verbosity`: a progress bar on a terminal, one line per epoch otherwise.

Model selection. Official scripts evaluate after 0-based epochs 5, 10, 15, ... (``epoch % 5
== 0 and epoch != 0``) and keep the checkpoint with the best *test* accuracy. Here the same
epochs are evaluated on the **validation** split (plus the last epoch, so every run selects a
model), the best validation segment accuracy wins (ties: the earliest epoch), and its weights
are kept on disk. `ValidationSelection` persists its state (per-epoch train metrics,
validations, best epoch, the best weights) in ``<run_dir>/selection/`` after every epoch,
atomically, so a run restored from a `Backup` continues with the same history.
"""

import hashlib
import pathlib
import shutil
import sys
import time

import h5py
import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ave_tf import interrupts
from ave_tf.atomic_files import atomic_path, read_json, write_json_atomic

ACCURACY_KEY = "segment_accuracy"
"""Substring of the logged validation metric that selects the model."""


def should_validate(epoch: int, epochs: int, every: int) -> bool:
    """Whether 0-based `epoch` is a validation epoch: official rule, plus the last epoch."""
    return (epoch % every == 0 and epoch != 0) or epoch == epochs - 1


def selection_accuracy(metrics: dict) -> float:
    """The segment accuracy among `model.evaluate(..., return_dict=True)` results."""
    keys = sorted(k for k in metrics if ACCURACY_KEY in k)
    if not keys:
        raise KeyError(f"no metric containing {ACCURACY_KEY!r} among {sorted(metrics)}")
    return float(metrics[keys[0]])


class ValidationSelection(keras.callbacks.Callback):
    """Validates every `every` epochs and keeps the best model's weights.

    Args:
        validation_data: `tf.data.Dataset` of (inputs, targets) batches.
        epochs: total epochs of the fit call.
        every: validation period (see `should_validate`).
        run_dir: folder for ``selection/state.json`` and the best weights.
        initial_epoch: the epoch training (re)starts from; records at or after it are
            dropped from a restored state.
        examples_per_epoch: training videos per epoch (for videos/s).
    """

    def __init__(
        self, validation_data, epochs, every, run_dir, initial_epoch=0, examples_per_epoch=None
    ):
        super().__init__()
        self.validation_data = validation_data
        self.epochs = epochs
        self.every = every
        self.directory = pathlib.Path(run_dir) / "selection"
        self.state_path = self.directory / "state.json"
        self.examples_per_epoch = examples_per_epoch
        state = read_json(self.state_path, {"epochs": [], "validations": []})
        self.records = [r for r in state["epochs"] if r["epoch"] < initial_epoch]
        self.validations = [v for v in state["validations"] if v["epoch"] < initial_epoch]
        self._epoch_start = None
        self._learning_rate = None
        self.evaluate_fn = None  # (model, dataset) -> metrics dict; default model.evaluate.

    # -- state ---------------------------------------------------------------------------
    @property
    def best(self):
        """The best validation record so far (highest accuracy, earliest on ties) or None."""
        if not self.validations:
            return None
        return max(self.validations, key=lambda v: (v["accuracy"], -v["epoch"]))

    @property
    def selected_epoch(self):
        return None if self.best is None else self.best["epoch"]

    def weights_path(self, epoch: int) -> pathlib.Path:
        return self.directory / f"epoch_{epoch:04d}.weights.h5"

    def restore_selected(self, model=None):
        """Loads the selected epoch's weights into `model` (default: the fitted model)."""
        if self.best is None:
            raise RuntimeError("no validation has run: nothing to select")
        (model or self.model).load_weights(self.weights_path(self.best["epoch"]))

    def _prune(self, epoch):
        # Keep the current best and the best among epochs that a backup already covers
        # (< epoch): a restart may drop the newest records, never older ones.
        keep = {self.best["epoch"]} if self.best else set()
        durable = [v for v in self.validations if v["epoch"] < epoch]
        if durable:
            keep.add(max(durable, key=lambda v: (v["accuracy"], -v["epoch"]))["epoch"])
        for path in self.directory.glob("epoch_*.weights.h5"):
            if int(path.name[6:10]) not in keep:
                path.unlink()

    def _save_state(self):
        write_json_atomic(
            self.state_path, {"epochs": self.records, "validations": self.validations}
        )

    # -- callback hooks ------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self._epoch_start
        record = {"epoch": epoch, "seconds": seconds, "learning_rate": self._learning_rate}
        record.update({k: float(v) for k, v in logs.items() if not k.startswith("val_")})
        if self.examples_per_epoch:
            record["videos_per_second"] = self.examples_per_epoch / seconds
        if should_validate(epoch, self.epochs, self.every):
            if self.evaluate_fn is not None:
                metrics = self.evaluate_fn(self.model, self.validation_data)
            else:
                metrics = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
            accuracy = selection_accuracy(metrics)
            previous = self.best
            self.validations.append(
                {"epoch": epoch, "accuracy": accuracy, **{k: float(v) for k, v in metrics.items()}}
            )
            if previous is None or accuracy > previous["accuracy"]:
                self.directory.mkdir(parents=True, exist_ok=True)
                target = self.weights_path(epoch)
                with atomic_path(target, suffix=".weights.h5") as temporary:
                    self.model.save_weights(temporary)
            for key, value in metrics.items():
                logs[f"val_{key}"] = float(value)
                record[f"val_{key}"] = float(value)
        self.records.append(record)
        self._prune(epoch)
        self._save_state()


# -- backups ---------------------------------------------------------------------------------


def _readable_weights(path) -> str | None:
    """None when `path` is a complete HDF5 weights file (every dataset reads), else why not."""
    try:
        with h5py.File(path, "r") as handle:
            datasets = []
            handle.visititems(lambda _, item: datasets.append(item) or None)
            for item in datasets:
                if isinstance(item, h5py.Dataset):
                    item[()]
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def _sha256(path) -> str:
    """The SHA-256 of the file at `path`, as 64 hex digits."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _backup_damage(path, sha256) -> str | None:
    """None when the weights file `path` has the SHA-256 its record states and every dataset
    reads, else why not. A record without one (written before backups had checksums, or by
    Keras itself) is checked by reading only."""
    if sha256 is not None:
        try:
            actual = _sha256(path)
        except OSError as error:
            return error.strerror or type(error).__name__
        if actual != sha256:
            return f"SHA-256 {actual[:12]}..., its record says {str(sha256)[:12]}..."
    return _readable_weights(path)


class Backup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that never leaves a half-written backup and survives a damaged one.

    Layout of `backup_dir`: ``epoch_<n>.weights.h5`` (weights and optimizer state after n
    epochs), each written to a temporary file and renamed, then ``training_metadata.json``
    ``{"epoch": n, "weights": file, "sha256": hex, "previous": {"epoch", "weights",
    "sha256"}}``, also atomically, so the metadata only ever names complete files, with the
    SHA-256 of the bytes written. The previous backup is kept as a fallback.

    On construction the folder is checked (the weights file's SHA-256 must match its record
    and every dataset must read): `initial_epoch` is where training resumes; when the newest
    backup is damaged the previous one is used, when none is usable the seed starts over;
    `notice` is then the one line that says so (else None). A record without a SHA-256
    (written before backups had one) is used when every dataset reads, and `notice` says it
    was not verified. Backups of the layout Keras writes itself (``latest.weights.h5``) are
    read the same way. The backup is not deleted at the end of `fit` (a kill before the
    seed's results are written must not re-train every epoch): call `delete()` once they are
    on disk.

    Args:
        backup_dir: the seed's backup folder.
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self.directory = pathlib.Path(backup_dir)
        self.metadata_path = self.directory / "training_metadata.json"
        self._latest, self._resume_weights, self.notice = self._resume_point()
        self.initial_epoch = self._latest["epoch"] if self._latest else 0

    def _resume_point(self):
        """(record, weights path, notice) of the newest usable backup (None where none is).

        The record is ``{"epoch", "weights"}`` and the ``"sha256"`` it was written with, if
        any; it becomes the next backup's ``"previous"``."""
        try:
            metadata = read_json(self.metadata_path)
        except (OSError, ValueError) as error:
            metadata, problem = None, f"{self.metadata_path} is unreadable ({error})"
        else:
            problem = None
        if metadata is None and problem is None:
            return None, None, None
        candidates = []
        if metadata is not None:
            candidates.append(metadata)
            if isinstance(metadata, dict) and metadata.get("previous"):
                candidates.append(metadata["previous"])
        for candidate in candidates:
            try:
                path = self.directory / candidate.get("weights", "latest.weights.h5")
                epoch = int(candidate["epoch"])
                sha256 = candidate.get("sha256")
            except (AttributeError, KeyError, TypeError, ValueError):
                problem = problem or f"{self.metadata_path} is not a backup record"
                continue
            damage = _backup_damage(path, sha256)
            if damage is None:
                record = {"epoch": epoch, "weights": path.name}
                if sha256 is not None:
                    record["sha256"] = sha256
                elif problem is None:  # The newest backup, written before backups had one.
                    problem = (
                        f"backup {path} has no SHA-256 (an older version wrote it): unverified"
                    )
                notice = None if problem is None else f"{problem}; resuming from epoch {epoch}"
                return record, path, notice
            problem = problem or f"backup {path} is damaged ({damage})"
        shutil.rmtree(self.directory, ignore_errors=True)
        return None, None, f"{problem}; starting this seed over"

    def on_train_begin(self, logs=None):
        if self._resume_weights is not None:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self._resume_weights)
            self.model._initial_epoch = self.initial_epoch

    def _save_model(self):
        epoch = self._current_epoch
        name = f"epoch_{epoch:04d}.weights.h5"
        with atomic_path(self.directory / name, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
            sha256 = _sha256(temporary)
        previous, self._latest = self._latest, {"epoch": epoch, "weights": name, "sha256": sha256}
        write_json_atomic(self.metadata_path, {**self._latest, "previous": previous})
        keep = {name, previous["weights"] if previous else None}
        for path in self.directory.glob("*.weights.h5"):
            if path.name not in keep:
                path.unlink()

    def delete(self):
        """Removes the backup folder (once the seed's results are on disk)."""
        shutil.rmtree(self.directory, ignore_errors=True)


# -- dropout seeds ---------------------------------------------------------------------------


def seed_generator_states(model):
    """The state variables of all SeedGenerators in `model` (stable order)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def epoch_key(seed: int, generator_index: int, epoch: int) -> int:
    """The Philox key of one seed generator in one epoch: a hash of (seed, generator, epoch).

    Keras' stateless random ops take the key modulo 2**31 - 2, hence the range.
    """
    entropy = [seed % 2**32, generator_index, epoch]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0]) % (2**31 - 2)


class EpochSeeds(keras.callbacks.Callback):
    """Dropout masks that depend on (seed, epoch, step, call) only, so a resumed run matches.

    `BackupAndRestore` saves weights and optimizer state, not the state ``[key, counter]`` of
    the `SeedGenerator`s behind `Dropout`. At each epoch start this sets every generator to
    ``[epoch_key(seed, generator index, epoch), 0]``; within the epoch Keras advances the
    counter by one per draw, so each (step, call) gets its own counter and each epoch its own
    key: no mask repeats across epochs, however the run got to that epoch.

    Args:
        seed: the run's seed.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        for index, state in enumerate(seed_generator_states(self.model)):
            key = epoch_key(self.seed, index, epoch)
            state.assign(np.array([key, 0], dtype=state.dtype))


# -- TensorBoard scalars ---------------------------------------------------------------------


def _scalar_metadata():
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


class ScalarLogs(keras.callbacks.Callback):
    """Writes every epoch's logs as scalars: `train/<name>` and `validation/<name>`.

    `keras.callbacks.TensorBoard` needs the `tensorboard` pip package (`tf.summary.scalar` is
    implemented there), which requirements.txt does not pin. This callback writes the same
    event files with TensorFlow's own `tf.summary.write` and the scalars plugin's metadata,
    so `tensorboard --logdir <model_dir>/logs` shows them wherever TensorBoard is installed.

    Args:
        log_dir: event-file folder (created when missing).
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writer = None
        self._metadata = _scalar_metadata()

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default(step=epoch):
            for key, value in (logs or {}).items():
                tag = f"validation/{key[4:]}" if key.startswith("val_") else f"train/{key}"
                tf.summary.write(tag, tf.constant(float(value)), metadata=self._metadata)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


# -- Ctrl-C ----------------------------------------------------------------------------------


class StopOnCtrlC(keras.callbacks.Callback):
    """Raises `KeyboardInterrupt` at the first batch or epoch end after a Ctrl-C.

    A Ctrl-C raises at once, except where a finalizer swallows it (`ave_tf.interrupts`); then
    this stops the run. Put it after `Backup` (an epoch that ended is kept). What is stopped
    resumes as a kill does: from the last finished epoch, identical to an uninterrupted run.
    """

    def on_train_batch_end(self, batch, logs=None):
        interrupts.raise_if_requested()

    def on_epoch_end(self, epoch, logs=None):
        interrupts.raise_if_requested()


def progress_verbosity() -> int:
    """`fit`'s verbose: a progress bar on a terminal, one line per epoch otherwise."""
    return 1 if sys.stdout.isatty() else 2
